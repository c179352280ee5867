#include "proxy/http_session.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>

#include "sys/system_clock.h"
#include "sys/tcp.h"

namespace bulwark::proxy {
namespace {

constexpr int64_t kLingerMs = 1000;  // reading what a client still sends before closing
constexpr int kRoundsMax = 64;       // state-machine steps per event, a bound on one turn

// What one direction still has to send: the unsent part of a rewritten
// head, then `body_ready` bytes at the front of a buffer.
struct Outgoing {
  std::string& head;
  std::size_t& head_sent;
  Buffer& body;
  std::size_t& body_ready;
};

// Sends as much of `out` as the socket takes, head and body in one system
// call, and advances it. Returns the bytes sent (0 when the socket is full:
// `writable` turns false, and an event will say when to go on), or -1 when
// the peer is gone.
ssize_t send_outgoing(int fd, Outgoing out, bool& writable) {
  const std::size_t head_left = out.head.size() - out.head_sent;
  const std::size_t total = head_left + out.body_ready;
  if (total == 0 || !writable) return 0;
  iovec iov[2];
  std::size_t count = 0;
  if (head_left > 0) iov[count++] = {out.head.data() + out.head_sent, head_left};
  if (out.body_ready > 0) iov[count++] = {out.body.head(), out.body_ready};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = count;
  const ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      writable = false;
      return 0;
    }
    return -1;
  }
  auto written = static_cast<std::size_t>(n);
  if (written < total) writable = false;
  const std::size_t from_head = std::min(written, head_left);
  out.head_sent += from_head;
  written -= from_head;
  out.body.consume(written);
  out.body_ready -= written;
  return n;
}

Counter status_counter(int status) {
  if (status >= 500) return kResponses5xx;
  if (status >= 400) return kResponses4xx;
  if (status >= 300) return kResponses3xx;
  return kResponses2xx;
}

}  // namespace

HttpSession::HttpSession(Worker& worker, int client_fd, std::shared_ptr<Frontend> frontend,
                         const SocketAddress& peer)
    : Session(worker, client_fd, std::move(frontend), peer),
      buffer_bytes_(std::max<std::size_t>(16384, frontend_->config.max_header_bytes + 1024)) {}

HttpSession::~HttpSession() {
  cin_.release(worker_.buffers());
  sin_.release(worker_.buffers());
}

void HttpSession::start() {
  idle_since_ms_ = worker_.now_ms();
  last_activity_ms_ = idle_since_ms_;
  run();
}

void HttpSession::on_client_event(uint32_t events) {
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) client_readable_ = true;
  if (events & (EPOLLRDHUP | EPOLLHUP)) client_peer_closed_ = true;
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) client_writable_ = true;
  run();
}

void HttpSession::on_server_event(uint32_t events) {
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) server_readable_ = true;
  if (events & (EPOLLRDHUP | EPOLLHUP)) server_peer_closed_ = true;
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) server_writable_ = true;
  if (phase_ == Phase::kConnecting) {
    if (!(events & (EPOLLOUT | EPOLLHUP | EPOLLERR))) return;
    if ((events & (EPOLLHUP | EPOLLERR)) || socket_error(server_fd_) != 0) {
      server_failed(Failure::kConnect);
      run();
      return;
    }
    phase_ = Phase::kExchange;
    last_activity_ms_ = worker_.now_ms();
  }
  run();
}

void HttpSession::run() {
  bool capped = true;
  for (int round = 0; round < kRoundsMax && !closed_; ++round) {
    bool progress = false;
    switch (phase_) {
      case Phase::kIdle:
        progress = step_idle();
        break;
      case Phase::kExchange:
        progress = send_request();
        if (!closed_ && phase_ == Phase::kExchange) progress |= pump_response();
        break;
      case Phase::kTunnel:
        progress = pump_tunnel();
        break;
      case Phase::kClosing:
        flush_closing();
        break;
      case Phase::kQueued:
      case Phase::kConnecting:
        break;
    }
    if (!progress) {
      capped = false;
      break;
    }
  }
  if (closed_) return;
  // Stopped at the bound with work left: no event would bring us back.
  if (capped) worker_.run_again(this);
  refresh_deadline();
}

HttpSession::Io HttpSession::read_into(int fd, Buffer& buffer, bool& readable, bool peer_closed,
                                       Counter counter) {
  if (!buffer.allocate(buffer_bytes_, worker_.buffers())) return Io::kError;
  const std::size_t space = buffer.make_space();
  if (space == 0) return Io::kFull;
  const ssize_t n = ::recv(fd, buffer.tail(), space, 0);
  if (n > 0) {
    buffer.produced(static_cast<std::size_t>(n));
    // A short read emptied the socket: with edge-triggered events the next
    // arrival wakes us, so there is no need to read until EAGAIN. Not so
    // after the peer shut its side: its end of stream comes with no new
    // event and must be read now.
    if (static_cast<std::size_t>(n) < space && !peer_closed) readable = false;
    last_activity_ms_ = worker_.now_ms();
    if (&buffer == &cin_) {
      frontend_stats().add(counter, static_cast<uint64_t>(n));
    } else {
      count_server_bytes(counter, static_cast<uint64_t>(n));
    }
    return Io::kData;
  }
  if (n == 0) {
    readable = false;
    return Io::kEof;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK) {
    readable = false;
    return Io::kAgain;
  }
  if (errno == EINTR) return Io::kAgain;
  return Io::kError;
}

bool HttpSession::step_idle() {
  if (!cin_.empty()) {
    RequestHead& head = worker_.scratch_request();
    HttpError error;
    // The buffer was sized for the frontend this connection started on; a
    // reload may since have raised the limit.
    const HttpLimits limits{std::min(static_cast<std::size_t>(frontend_->config.max_header_bytes),
                                     buffer_bytes_ - 1024),
                            128};
    switch (parse_request_head({cin_.head(), cin_.size()}, limits, head, error)) {
      case ParseStatus::kComplete:
        begin_request(head);
        return !closed_;
      case ParseStatus::kError:
        frontend_stats().add(kErrors);
        respond_error(error.status);
        return false;
      case ParseStatus::kIncomplete:
        break;
    }
  }
  if (worker_.stopping() && cin_.empty()) {
    close();
    return false;
  }
  if (!client_readable_) return false;
  switch (read_into(client_fd_, cin_, client_readable_, client_peer_closed_, kBytesIn)) {
    case Io::kData:
      if (head_start_ms_ == 0) head_start_ms_ = worker_.now_ms();
      return true;
    case Io::kAgain:
      return false;
    case Io::kFull:
      respond_error(431);
      return false;
    case Io::kEof:
    case Io::kError:
      close();
      return false;
  }
  return false;
}

const std::string& HttpSession::client_ip() {
  if (client_ip_.empty()) client_ip_ = peer_.ip();
  return client_ip_;
}

void HttpSession::begin_request(const RequestHead& head) {
  request_start_us_ = mono_us();
  frontend_stats().add(kRequests);
  version_minor_ = head.version_minor;
  keep_alive_ = head.keep_alive && !worker_.stopping();
  is_head_ = head.is_head;
  idempotent_ = head.idempotent;
  has_body_ = head.body != BodyKind::kNone;
  upgrade_requested_ = !head.upgrade.empty();
  const ForwardOptions options{client_ip(), frontend_->config.forwarded_for,
                               frontend_->config.forwarded};
  req_head_.clear();
  append_request_head(head, options, req_head_);
  req_head_sent_ = 0;
  cin_.consume(head.head_bytes);
  head_start_ms_ = 0;
  req_body_.reset(head.body, head.content_length);
  req_ready_ = 0;
  req_done_ = false;
  response_head_done_ = false;
  response_started_ = false;
  response_forwarded_ = false;
  response_status_ = 0;
  resp_out_.clear();
  resp_out_sent_ = 0;
  resp_ready_ = 0;
  attempts_ = 0;
  tried_count_ = 0;
  first_request_ = false;
  dispatch();
}

void HttpSession::dispatch() {
  backend_ = frontend_->backend;
  const auto& backend = backend_;
  Backend::Choice choice =
      backend->pick(client_hash(), {tried_.data(), static_cast<std::size_t>(tried_count_)});
  settings_ = std::move(choice.settings);
  switch (choice.outcome) {
    case PickOutcome::kPicked:
      attach(std::move(choice.server));
      return;
    case PickOutcome::kFull:
      if (backend->try_enqueue()) {
        phase_ = Phase::kQueued;
        phase_deadline_ms_ = worker_.now_ms() + settings_->queue_timeout_ms;
        worker_.enqueue(this, backend);
        return;
      }
      [[fallthrough]];
    case PickOutcome::kNone:
      backend_stats().add(kErrors);
      respond_error(503);
      return;
  }
}

void HttpSession::on_dequeue(Backend::Choice choice) {
  settings_ = std::move(choice.settings);
  if (choice.outcome == PickOutcome::kPicked) {
    attach(std::move(choice.server));
  } else {
    backend_stats().add(kErrors);
    respond_error(503);
  }
  run();
}

void HttpSession::attach(std::shared_ptr<Server> server) {
  server_ = std::move(server);
  tried_[std::min<std::size_t>(tried_count_, tried_.size() - 1)] = server_.get();
  tried_count_ = std::min<int>(tried_count_ + 1, static_cast<int>(tried_.size()));
  sin_.consume(sin_.size());
  server_readable_ = false;
  server_peer_closed_ = false;
  last_activity_ms_ = worker_.now_ms();
  const int pooled = worker_.pool_take(*server_);
  if (pooled >= 0) {
    server_fd_ = pooled;
    worker_.watch_server_fd(pooled, this);
    server_reused_ = true;
    server_writable_ = true;
    phase_ = Phase::kExchange;
    return;
  }
  server_reused_ = false;
  server_stats().add(kConnections);
  auto connecting = connect_tcp(server_->address());
  if (!connecting) {
    server_failed(Failure::kConnect);
    return;
  }
  server_fd_ = connecting->fd;
  worker_.watch_server_fd(server_fd_, this);
  server_writable_ = !connecting->in_progress;
  if (connecting->in_progress) {
    phase_ = Phase::kConnecting;
    phase_deadline_ms_ = worker_.now_ms() + settings_->connect_timeout_ms;
  } else {
    phase_ = Phase::kExchange;
  }
}

bool HttpSession::send_request() {
  if (req_done_) return false;
  bool progress = false;
  while (!closed_ && phase_ == Phase::kExchange) {
    if (req_ready_ == 0 && !req_body_.done() && !cin_.empty()) {
      req_ready_ = req_body_.feed(cin_.head(), cin_.size());
      if (req_body_.failed()) {
        frontend_stats().add(kErrors);
        respond_error(400);
        return false;
      }
    }
    if (req_head_sent_ < req_head_.size() || req_ready_ > 0) {
      const ssize_t n = send_outgoing(server_fd_, {req_head_, req_head_sent_, cin_, req_ready_},
                                      server_writable_);
      if (n < 0) {
        server_failed(Failure::kReset);
        return true;
      }
      if (n == 0) break;
      count_server_bytes(kBytesOut, static_cast<uint64_t>(n));
      last_activity_ms_ = worker_.now_ms();
      progress = true;
      continue;
    }
    if (req_body_.done()) {
      req_done_ = true;
      break;
    }
    if (!client_readable_) break;
    const Io io = read_into(client_fd_, cin_, client_readable_, client_peer_closed_, kBytesIn);
    if (io == Io::kData) {
      progress = true;
      continue;
    }
    if (io == Io::kEof || io == Io::kError) {
      // The client went away in the middle of its request body.
      close();
      return false;
    }
    break;
  }
  return progress;
}

bool HttpSession::flush_to_client() {
  const ssize_t n =
      send_outgoing(client_fd_, {resp_out_, resp_out_sent_, sin_, resp_ready_}, client_writable_);
  if (n < 0) {
    close();
    return false;
  }
  if (n == 0) return false;
  frontend_stats().add(kBytesOut, static_cast<uint64_t>(n));
  response_forwarded_ = true;
  last_activity_ms_ = worker_.now_ms();
  if (resp_out_sent_ == resp_out_.size()) {
    resp_out_.clear();
    resp_out_sent_ = 0;
  }
  return true;
}

bool HttpSession::parse_response_head() {
  ResponseHead& head = worker_.scratch_response();
  HttpError error;
  const HttpLimits limits{buffer_bytes_ - 1, 256};
  switch (proxy::parse_response_head({sin_.head(), sin_.size()}, limits, is_head_, head, error)) {
    case ParseStatus::kIncomplete:
      return false;
    case ParseStatus::kError:
      server_failed(Failure::kBadResponse);
      return true;
    case ParseStatus::kComplete:
      break;
  }
  if (head.interim) {
    // 100 Continue and friends go to the client as they come; the final
    // response follows on the same connection. HTTP/1.0 clients know no
    // 1xx (RFC 9110 15.2): they get only the final response.
    if (version_minor_ > 0) append_response_head(head, true, version_minor_, resp_out_);
    sin_.consume(head.head_bytes);
    return true;
  }
  if (head.status == 101) {
    // A switch of protocols nobody asked for is a broken server.
    if (!upgrade_requested_ || !req_done_) {
      server_failed(Failure::kBadResponse);
      return true;
    }
    response_status_ = 101;
    append_switching_protocols_head(head, resp_out_);
    sin_.consume(head.head_bytes);
    for (CounterSlice* s : {&backend_stats(), &server_stats()}) s->add(kRequests);
    frontend_stats().add(kResponses2xx);
    server_->note_traffic_success();
    phase_ = Phase::kTunnel;
    return true;
  }
  response_status_ = head.status;
  server_keep_alive_ = head.keep_alive;
  if (head.body == BodyKind::kUntilClose) keep_alive_ = false;
  append_response_head(head, keep_alive_, version_minor_, resp_out_);
  sin_.consume(head.head_bytes);
  resp_body_.reset(head.body, head.content_length);
  response_head_done_ = true;
  return true;
}

bool HttpSession::pump_response() {
  bool progress = false;
  while (!closed_ && phase_ == Phase::kExchange) {
    if (!response_head_done_ && !sin_.empty() && parse_response_head()) {
      progress = true;
      continue;
    }
    // Frame the body before writing, so that a head and the body bytes
    // behind it leave in one system call.
    if (response_head_done_ && resp_ready_ == 0 && !resp_body_.done() && !sin_.empty()) {
      resp_ready_ = resp_body_.feed(sin_.head(), sin_.size());
      if (resp_body_.failed()) {
        close();
        return false;
      }
    }
    if (flush_to_client()) {
      progress = true;
      continue;
    }
    if (closed_) break;
    if (resp_ready_ > 0 || resp_out_sent_ < resp_out_.size()) break;  // the client is slow
    if (response_head_done_ && resp_body_.done()) {
      finish_exchange();
      return true;
    }
    if (!server_readable_) break;
    const Io io = read_into(server_fd_, sin_, server_readable_, server_peer_closed_, kBytesIn);
    if (io == Io::kData) {
      response_started_ = true;
      progress = true;
      continue;
    }
    if (io == Io::kAgain) break;
    if (io == Io::kFull) {
      server_failed(Failure::kBadResponse);  // a response head larger than the buffer
      return true;
    }
    // End of stream or error from the server.
    if (response_head_done_ && resp_body_.kind() == BodyKind::kUntilClose && io == Io::kEof) {
      server_keep_alive_ = false;
      finish_exchange();
      return true;
    }
    if (!response_head_done_) {
      server_failed(Failure::kReset);
      return true;
    }
    close();  // the response was cut short: the client must see it end
    return false;
  }
  return progress;
}

bool HttpSession::flush_to_server() {
  // In a tunnel everything the client sends goes to the server as it is.
  std::size_t ready = cin_.size();
  const ssize_t n =
      send_outgoing(server_fd_, {req_head_, req_head_sent_, cin_, ready}, server_writable_);
  if (n < 0) {
    close();
    return false;
  }
  if (n == 0) return false;
  count_server_bytes(kBytesOut, static_cast<uint64_t>(n));
  last_activity_ms_ = worker_.now_ms();
  return true;
}

bool HttpSession::pump_tunnel() {
  bool progress = false;
  for (int round = 0; round < kRoundsMax && !closed_; ++round) {
    // Server to client: everything in sin_ is tunnel data.
    resp_ready_ = sin_.size();
    bool moved = flush_to_client();
    if (closed_) return false;
    moved |= flush_to_server();
    if (closed_) return false;
    if (!client_eof_ && client_readable_) {
      const Io io = read_into(client_fd_, cin_, client_readable_, client_peer_closed_, kBytesIn);
      moved |= io == Io::kData;
      if (io == Io::kEof) client_eof_ = true;
      if (io == Io::kError) {
        close();
        return false;
      }
    }
    if (!server_eof_ && server_readable_) {
      const Io io = read_into(server_fd_, sin_, server_readable_, server_peer_closed_, kBytesIn);
      moved |= io == Io::kData;
      if (io == Io::kEof) server_eof_ = true;
      if (io == Io::kError) {
        close();
        return false;
      }
    }
    progress |= moved;
    if (!moved) break;
  }
  // A side that has shut and whose bytes are all delivered: pass the
  // half-close on; when both have, the tunnel is over.
  const bool up_done = client_eof_ && cin_.empty();
  const bool down_done = server_eof_ && sin_.empty() && resp_out_.empty();
  if (up_done && down_done) {
    close();
    return false;
  }
  if (up_done) ::shutdown(server_fd_, SHUT_WR);
  if (down_done) ::shutdown(client_fd_, SHUT_WR);
  return progress;
}

void HttpSession::finish_exchange() {
  const auto latency_us =
      static_cast<uint64_t>(std::max<int64_t>(0, mono_us() - request_start_us_));
  for (CounterSlice* s : {&backend_stats(), &server_stats()}) {
    s->add(kRequests);
    s->add(status_counter(response_status_));
    s->observe_latency_us(latency_us);
  }
  frontend_stats().add(status_counter(response_status_));
  server_->note_traffic_success();
  if (server_keep_alive_ && req_done_ && !worker_.stopping() && server_reusable()) {
    worker_.pool_put(server_, server_fd_, *settings_);
    server_fd_ = -1;
  }
  close_server();
  if (!keep_alive_ || !req_done_ || worker_.stopping()) {
    start_closing();
    return;
  }
  phase_ = Phase::kIdle;
  idle_since_ms_ = worker_.now_ms();
  // An idle connection keeps no buffer: they go back to the worker's cache.
  sin_.release_if_empty(worker_.buffers());
  cin_.release_if_empty(worker_.buffers());
  req_head_.clear();
}

bool HttpSession::server_reusable() {
  if (!sin_.empty() || server_peer_closed_) return false;
  if (!server_readable_) return true;  // the last read drained the socket
  // The last read filled the buffer exactly: bytes may wait unseen, and
  // their event is spent. A connection with anything on it must not carry
  // another client's request.
  char byte;
  const ssize_t n = ::recv(server_fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

void HttpSession::server_failed(Failure failure) {
  const bool before_response = !response_started_;
  const bool nothing_sent = failure == Failure::kConnect || failure == Failure::kConnectTimeout;
  server_stats().add(nothing_sent ? kConnectErrors : kResponseErrors);
  // A reused idle connection that the server closed just as we sent on it
  // is the keep-alive race, not a sign that the server is failing.
  const bool keepalive_race = failure == Failure::kReset && server_reused_ && before_response;
  if (!keepalive_race) report_server_failure();
  close_server();
  const bool retryable =
      nothing_sent || (failure == Failure::kReset && before_response && idempotent_ && !has_body_);
  if (retryable && attempts_ < settings_->retries) {
    ++attempts_;
    backend_stats().add(kRetries);
    req_head_sent_ = 0;
    req_done_ = false;
    response_started_ = false;
    dispatch();
    return;
  }
  backend_stats().add(kErrors);
  respond_error(failure == Failure::kServerTimeout ? 504 : nothing_sent ? 503 : 502);
}

void HttpSession::respond_error(int status) {
  if (phase_ == Phase::kQueued) worker_.leave_queue(this);
  close_server();
  frontend_stats().add(status_counter(status));
  if (response_forwarded_) {
    close();  // a response is half sent: only closing can tell the client
    return;
  }
  resp_out_ = make_error_response(status);
  resp_out_sent_ = 0;
  resp_ready_ = 0;
  keep_alive_ = false;
  start_closing();
}

void HttpSession::start_closing() {
  phase_ = Phase::kClosing;
  phase_deadline_ms_ = worker_.now_ms() + std::min(frontend_->config.client_timeout_ms, 5000);
  flush_closing();
}

void HttpSession::flush_closing() {
  while (!closed_ && resp_out_sent_ < resp_out_.size()) {
    if (!flush_to_client()) return;
  }
  if (closed_) return;
  if (!shut_down_) {
    // Half-close, then read what the client still sends: closing with
    // unread input would reset the connection and could destroy the
    // response before the client reads it.
    ::shutdown(client_fd_, SHUT_WR);
    shut_down_ = true;
    phase_deadline_ms_ = std::min(phase_deadline_ms_, worker_.now_ms() + kLingerMs);
  }
  char sink[4096];
  for (int i = 0; i < 16; ++i) {
    const ssize_t n = ::recv(client_fd_, sink, sizeof sink, 0);
    if (n > 0) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      client_readable_ = false;
      return;
    }
    close();
    return;
  }
}

void HttpSession::on_timeout() {
  switch (phase_) {
    case Phase::kIdle:
      if (cin_.empty()) {
        close();
      } else {
        frontend_stats().add(kErrors);
        respond_error(408);
      }
      break;
    case Phase::kQueued:
      backend_stats().add(kErrors);
      respond_error(503);
      break;
    case Phase::kConnecting:
      server_failed(Failure::kConnectTimeout);
      break;
    case Phase::kExchange:
      // A silent server before its response head gets a 504; a silent
      // client, or a response cut off midway, can only be closed.
      if (!waiting_on_client() && !response_head_done_) {
        server_failed(Failure::kServerTimeout);
      } else {
        close();
      }
      break;
    case Phase::kTunnel:
    case Phase::kClosing:
      close();
      break;
  }
  run();
}

void HttpSession::on_stopping() {
  keep_alive_ = false;
  if (phase_ == Phase::kIdle && cin_.empty()) close();
}

bool HttpSession::waiting_on_client() const {
  const bool output_blocked =
      (resp_ready_ > 0 || resp_out_sent_ < resp_out_.size()) && !client_writable_;
  const bool needs_body = !req_done_ && req_head_sent_ == req_head_.size() && req_ready_ == 0;
  return output_blocked || (needs_body && !response_started_);
}

void HttpSession::refresh_deadline() {
  int64_t deadline = 0;
  const FrontendConfig& f = frontend_->config;
  switch (phase_) {
    case Phase::kIdle:
      if (!cin_.empty() && head_start_ms_ != 0) {
        deadline = head_start_ms_ + f.http_request_timeout_ms;
      } else {
        deadline =
            idle_since_ms_ + (first_request_ ? f.http_request_timeout_ms : f.keepalive_timeout_ms);
      }
      break;
    case Phase::kQueued:
    case Phase::kConnecting:
    case Phase::kClosing:
      deadline = phase_deadline_ms_;
      break;
    case Phase::kTunnel:
      deadline = last_activity_ms_ + std::max(f.client_timeout_ms, settings_->server_timeout_ms);
      break;
    case Phase::kExchange:
      deadline = last_activity_ms_ +
                 (waiting_on_client() ? f.client_timeout_ms : settings_->server_timeout_ms);
      break;
  }
  if (deadline != deadline_ms_) set_deadline(deadline);
}

}  // namespace bulwark::proxy
