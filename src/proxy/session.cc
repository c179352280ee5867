#include "proxy/session.h"

#include <spdlog/spdlog.h>

#include "proxy/worker.h"
#include "sys/tcp.h"

namespace bulwark::proxy {

Session::Session(Worker& worker, int client_fd, std::shared_ptr<Frontend> frontend,
                 const SocketAddress& peer)
    : worker_(worker), client_fd_(client_fd), frontend_(std::move(frontend)), peer_(peer) {}

Session::~Session() {
  // A session deleted by a forced stop was never closed.
  if (!closed_) {
    close_server();
    close_fd(client_fd_);
    frontend_->current->fetch_sub(1, std::memory_order_relaxed);
  }
}

void Session::close() {
  if (closed_) return;
  closed_ = true;
  close_server();
  worker_.forget_fd(client_fd_);
  close_fd(client_fd_);
  frontend_->current->fetch_sub(1, std::memory_order_relaxed);
  worker_.session_closed(this);
}

void Session::close_server() {
  if (server_fd_ >= 0) {
    worker_.forget_fd(server_fd_);
    close_fd(server_fd_);
    server_fd_ = -1;
  }
  if (server_) {
    backend_->release(*server_);
    server_.reset();
  }
}

void Session::report_server_failure() {
  Backend& backend = *backend_;
  switch (backend.note_traffic_failure(*server_)) {
    case Backend::Verdict::kCounted:
      break;
    case Backend::Verdict::kCheckRequested:
      spdlog::warn("backend {} server {}: traffic keeps failing, checking it now", backend.name(),
                   server_->name());
      break;
    case Backend::Verdict::kMarkedDown:
      spdlog::warn("backend {} server {} marked down: traffic keeps failing", backend.name(),
                   server_->name());
      break;
  }
}

void Session::rebind(std::shared_ptr<Frontend> frontend) {
  if (frontend) {
    frontend_ = std::move(frontend);
  } else {
    on_stopping();
  }
}

void Session::count_server_bytes(Counter counter, uint64_t bytes) {
  server_->counters().slice(worker_.index()).add(counter, bytes);
  backend_->counters().slice(worker_.index()).add(counter, bytes);
}

void Session::set_deadline(int64_t deadline_ms) {
  deadline_ms_ = deadline_ms;
  worker_.schedule(this);
}

uint64_t Session::client_hash() const {
  // The address without the port, so that every connection of one client
  // goes to the same server.
  if (peer_.family() == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in*>(&peer_.storage)->sin_addr;
    return hash_bytes(&a, sizeof a);
  }
  if (peer_.family() == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6*>(&peer_.storage)->sin6_addr;
    return hash_bytes(&a, sizeof a);
  }
  return 0;
}

}  // namespace bulwark::proxy
