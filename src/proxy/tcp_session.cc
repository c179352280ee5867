#include "proxy/tcp_session.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "sys/tcp.h"

namespace bulwark::proxy {
namespace {

constexpr std::size_t kSpliceChunk = 1 << 16;  // one pipe's default capacity
constexpr int kRoundsMax = 16;                 // splices per direction and turn, for fairness

}  // namespace

TcpSession::TcpSession(Worker& worker, int client_fd, std::shared_ptr<Frontend> frontend,
                       const SocketAddress& peer)
    : Session(worker, client_fd, std::move(frontend), peer) {
  // Until the server answers, the client side is not read: its bytes wait
  // in the kernel, so a retry on another server loses nothing.
  up_.out_writable = false;
  down_.in_readable = false;
}

TcpSession::~TcpSession() {
  release_pipe(up_);
  release_pipe(down_);
}

void TcpSession::release_pipe(Pipe& p) {
  if (p.fds[0] < 0) return;
  if (p.buffered == 0) {
    worker_.return_pipe(p.fds);
  } else {
    close_fd(p.fds[0]);
    close_fd(p.fds[1]);
    p.fds[0] = p.fds[1] = -1;
  }
}

void TcpSession::start() {
  frontend_->counters->slice(worker_.index()).add(kRequests);
  last_activity_ms_ = worker_.now_ms();
  dispatch();
}

void TcpSession::dispatch() {
  const Server* tried[1] = {last_tried_};
  backend_ = frontend_->backend;
  Backend::Choice choice = backend_->pick(client_hash(), {tried, last_tried_ ? 1U : 0U});
  settings_ = std::move(choice.settings);
  if (choice.outcome == PickOutcome::kPicked) {
    attach(std::move(choice.server));
    return;
  }
  if (choice.outcome == PickOutcome::kFull && backend_->try_enqueue()) {
    phase_ = Phase::kQueued;
    set_deadline(worker_.now_ms() + settings_->queue_timeout_ms);
    worker_.enqueue(this, backend_);
    return;
  }
  backend_->counters().slice(worker_.index()).add(kErrors);
  close();
}

void TcpSession::on_dequeue(Backend::Choice choice) {
  settings_ = std::move(choice.settings);
  if (choice.outcome == PickOutcome::kPicked) {
    attach(std::move(choice.server));
  } else {
    close();
  }
}

void TcpSession::attach(std::shared_ptr<Server> server) {
  server_ = std::move(server);
  last_tried_ = server_.get();
  server_->counters().slice(worker_.index()).add(kConnections);
  server_->counters().slice(worker_.index()).add(kRequests);
  backend_->counters().slice(worker_.index()).add(kRequests);
  auto connecting = connect_tcp(server_->address());
  if (!connecting) {
    connect_failed();
    return;
  }
  server_fd_ = connecting->fd;
  worker_.watch_server_fd(server_fd_, this);
  phase_ = Phase::kConnecting;
  set_deadline(worker_.now_ms() + settings_->connect_timeout_ms);
  if (!connecting->in_progress) {
    phase_ = Phase::kStreaming;
    up_.out_writable = true;
    down_.in_readable = true;
    run();
  }
}

void TcpSession::connect_failed() {
  const int worker = worker_.index();
  server_->counters().slice(worker).add(kConnectErrors);
  report_server_failure();
  close_server();
  if (attempts_ < settings_->retries) {
    ++attempts_;
    backend_->counters().slice(worker).add(kRetries);
    dispatch();
    return;
  }
  backend_->counters().slice(worker).add(kErrors);
  close();
}

void TcpSession::on_client_event(uint32_t events) {
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) up_.in_readable = true;
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) down_.out_writable = true;
  if (phase_ == Phase::kStreaming) run();
}

void TcpSession::on_server_event(uint32_t events) {
  if (phase_ == Phase::kConnecting) {
    if (!(events & (EPOLLOUT | EPOLLHUP | EPOLLERR))) return;
    if ((events & (EPOLLHUP | EPOLLERR)) || socket_error(server_fd_) != 0) {
      connect_failed();
      return;
    }
    server_->note_traffic_success();
    phase_ = Phase::kStreaming;
    up_.out_writable = true;
    down_.in_readable = true;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) down_.in_readable = true;
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) up_.out_writable = true;
  run();
}

void TcpSession::run() {
  if (closed_ || phase_ != Phase::kStreaming) return;
  const Pumped up = pump(up_, client_fd_, server_fd_, true);
  const Pumped down = up == Pumped::kBroken ? up : pump(down_, server_fd_, client_fd_, false);
  if (up == Pumped::kBroken || down == Pumped::kBroken) {
    close();
    return;
  }
  // Stopped at the bound on work per turn: come back after this batch.
  if (up == Pumped::kMore || down == Pumped::kMore) worker_.run_again(this);
  if (up_.shut && down_.shut) {
    close();
    return;
  }
  const int idle_ms = std::max(frontend_->config.client_timeout_ms, settings_->server_timeout_ms);
  const int64_t deadline = last_activity_ms_ + idle_ms;
  if (deadline != deadline_ms_) set_deadline(deadline);
}

TcpSession::Pumped TcpSession::pump(Pipe& p, int from, int to, bool to_server) {
  const int worker = worker_.index();
  bool more = true;
  for (int round = 0; round < kRoundsMax; ++round) {
    bool moved = false;
    if (!p.in_eof && p.in_readable && p.buffered < kSpliceChunk) {
      if (p.fds[0] < 0 && !worker_.take_pipe(p.fds)) return Pumped::kBroken;
      const ssize_t n = ::splice(from, nullptr, p.fds[1], nullptr, kSpliceChunk - p.buffered,
                                 SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        p.buffered += static_cast<std::size_t>(n);
        moved = true;
        last_activity_ms_ = worker_.now_ms();
        if (to_server) {
          frontend_->counters->slice(worker).add(kBytesIn, static_cast<uint64_t>(n));
        } else {
          count_server_bytes(kBytesIn, static_cast<uint64_t>(n));
        }
      } else if (n == 0) {
        p.in_eof = true;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        // EAGAIN also means "pipe full" (it has slots, not bytes): only an
        // empty pipe proves the socket drained.
        if (p.buffered == 0) p.in_readable = false;
      } else if (errno != EINTR) {
        return Pumped::kBroken;
      }
    }
    if (p.buffered > 0 && p.out_writable) {
      const ssize_t n =
          ::splice(p.fds[0], nullptr, to, nullptr, p.buffered, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        p.buffered -= static_cast<std::size_t>(n);
        moved = true;
        last_activity_ms_ = worker_.now_ms();
        if (to_server) {
          count_server_bytes(kBytesOut, static_cast<uint64_t>(n));
        } else {
          frontend_->counters->slice(worker).add(kBytesOut, static_cast<uint64_t>(n));
        }
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        p.out_writable = false;
      } else if (n < 0 && errno != EINTR) {
        return Pumped::kBroken;
      }
    }
    if (!moved) {
      more = false;
      break;
    }
  }
  if (p.in_eof && p.buffered == 0 && !p.shut) {
    // Pass the half-close on: the other side may still answer.
    ::shutdown(to, SHUT_WR);
    p.shut = true;
  }
  return more ? Pumped::kMore : Pumped::kIdle;
}

void TcpSession::on_timeout() {
  switch (phase_) {
    case Phase::kQueued:
      worker_.leave_queue(this);
      close();
      return;
    case Phase::kConnecting:
      connect_failed();
      return;
    case Phase::kStreaming:
      if (worker_.now_ms() >= last_activity_ms_ + std::max(frontend_->config.client_timeout_ms,
                                                           settings_->server_timeout_ms)) {
        close();
      } else {
        run();
      }
      return;
  }
}

}  // namespace bulwark::proxy
