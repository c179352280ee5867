#include "proxy/worker.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/check.h"
#include "proxy/http_session.h"
#include "proxy/tcp_session.h"
#include "sys/system_clock.h"
#include "sys/tcp.h"

namespace bulwark::proxy {
namespace {

constexpr uint32_t kConnectionEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
constexpr int kPipeCacheMax = 256;  // idle splice pipes kept per worker
constexpr int64_t kSweepMs = 500;   // idle pool and paused listener checks

}  // namespace

Worker::Worker(int index, WorkerShared& shared) : index_(index), shared_(shared) {}

Worker::~Worker() {
  if (thread_.joinable()) {
    begin_stop();
    finish_stop();
  }
}

void Worker::start() {
  thread_ = std::thread([this] { run(); });
}

std::future<void> Worker::set_frontends(std::vector<std::shared_ptr<Frontend>> frontends) {
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> result = done->get_future();
  loop_.post([this, done, f = std::move(frontends)] {
    install_frontends(f);
    done->set_value();
  });
  return result;
}

void Worker::begin_stop() {
  stop_requested_.store(true);
  loop_.wake();
}

void Worker::finish_stop() {
  force_close_.store(true);
  loop_.wake();
  if (thread_.joinable()) thread_.join();
}

Worker::FdEntry& Worker::entry(int fd) {
  if (fd >= static_cast<int>(fds_.size()))
    fds_.resize(std::max<std::size_t>(fd + 1, fds_.size() * 2));
  return fds_[fd];
}

void Worker::install_frontends(const std::vector<std::shared_ptr<Frontend>>& frontends) {
  std::vector<std::unique_ptr<Listener>> next;
  for (const auto& f : frontends) {
    const int fd = f->listen_fds[index_];
    auto it = std::find_if(listeners_.begin(), listeners_.end(),
                           [&](const auto& l) { return l && l->fd == fd; });
    std::unique_ptr<Listener> l;
    if (it != listeners_.end()) {
      l = std::move(*it);  // same socket: keep it registered
    } else {
      l = std::make_unique<Listener>();
      l->fd = fd;
      if (auto st = watch(fd, FdKind::kListener, l.get(), EPOLLIN | EPOLLET); !st) {
        spdlog::error("worker {}: {}", index_, st.error().message);
        continue;
      }
    }
    l->frontend = f;
    entry(fd).owner = l.get();
    next.push_back(std::move(l));
  }
  // Sockets of removed frontends: stop watching; the Proxy closes them once
  // every worker has let go.
  for (auto& l : listeners_) {
    if (!l) continue;
    loop_.remove(l->fd);
    forget_fd(l->fd);
  }
  listeners_ = std::move(next);
  // Established connections follow their frontend by name into the new
  // configuration; those whose frontend is gone finish what they do.
  for (Session* s = sessions_head_; s;) {
    Session* next_session = s->next_;
    const auto it = std::find_if(frontends.begin(), frontends.end(), [&](const auto& f) {
      return f->config.name == s->frontend_name() && f->config.mode == s->frontend_mode();
    });
    s->rebind(it == frontends.end() ? nullptr : *it);
    s = next_session;
  }
  // A new socket may already hold connections: accept them now (edge
  // triggered, no event would come for them).
  for (auto& l : listeners_) accept_on(*l);
}

void Worker::run() {
  while (true) {
    now_ms_ = mono_ms_now();
    if (stop_requested_.load() && !stopping_) {
      stopping_ = true;
      for (auto& l : listeners_) {
        loop_.remove(l->fd);
        forget_fd(l->fd);
      }
      listeners_.clear();
      // on_stopping() may close a session, which unlinks it: step first.
      for (Session* s = sessions_head_; s;) {
        Session* next = s->next_;
        s->on_stopping();
        s = next;
      }
      reap();
    }
    if (stopping_ && (sessions_head_ == nullptr || force_close_.load())) break;
    int timeout_ms = 1000;
    if (!timers_.empty()) {
      timeout_ms = static_cast<int>(std::clamp<int64_t>(timers_.begin()->first - now_ms_, 0, 1000));
    }
    if (!queue_.empty()) timeout_ms = std::min(timeout_ms, 10);
    if (!again_.empty()) timeout_ms = 0;
    const auto events = loop_.wait(timeout_ms);
    now_ms_ = mono_ms_now();
    for (const epoll_event& ev : events) dispatch(ev);
    run_deferred();
    run_timers();
    if (!queue_.empty()) retry_queue();
    if (now_ms_ >= next_sweep_ms_) {
      next_sweep_ms_ = now_ms_ + kSweepMs;
      sweep_pools();
      resume_paused_listeners();
    }
    reap();
  }
  // Forced end: close everything still open.
  while (sessions_head_) {
    Session* s = sessions_head_;
    sessions_head_ = s->next_;
    s->prev_ = s->next_ = nullptr;
    session_count_.fetch_sub(1);
    delete s;
  }
  for (auto& [server, pool] : pools_) {
    for (auto& [fd, since] : pool->idle) close_fd(fd);
  }
  pools_.clear();
  for (auto& [r, w] : pipes_) {
    close_fd(r);
    close_fd(w);
  }
  pipes_.clear();
}

void Worker::run_deferred() {
  if (again_.empty()) return;
  std::vector<Session*> again;
  again.swap(again_);
  // Closed sessions stay allocated until reap(), so the pointers are valid.
  for (Session* s : again) {
    if (!s->closed()) s->resume();
  }
}

Status Worker::watch(int fd, FdKind kind, void* owner, uint32_t events) {
  FdEntry& e = entry(fd);
  e = FdEntry{kind, e.generation + 1, owner};
  return loop_.add(fd, events,
                   (static_cast<uint64_t>(e.generation) << 32) | static_cast<uint32_t>(fd));
}

void Worker::dispatch(const epoll_event& ev) {
  const int fd = static_cast<int>(ev.data.u64 & 0xffffffffU);
  const auto generation = static_cast<uint32_t>(ev.data.u64 >> 32);
  if (fd < 0 || fd >= static_cast<int>(fds_.size())) return;
  FdEntry e = fds_[fd];
  if (e.generation != generation) return;  // a closed socket's event
  switch (e.kind) {
    case FdKind::kNone:
      return;
    case FdKind::kListener:
      accept_on(*static_cast<Listener*>(e.owner));
      return;
    case FdKind::kClient: {
      auto* s = static_cast<Session*>(e.owner);
      if (!s->closed()) s->on_client_event(ev.events);
      return;
    }
    case FdKind::kServer: {
      auto* s = static_cast<Session*>(e.owner);
      if (!s->closed()) s->on_server_event(ev.events);
      return;
    }
    case FdKind::kPooled:
      // An idle server connection became readable: the server closed it or
      // broke protocol. Either way it cannot carry a request any more.
      close_pooled(*static_cast<Pool*>(e.owner), fd);
      return;
  }
}

void Worker::accept_on(Listener& l) {
  const auto& f = l.frontend;
  while (true) {
    if (f->current->load(std::memory_order_relaxed) >= f->config.maxconn ||
        shared_.connections.load(std::memory_order_relaxed) >=
            shared_.maxconn.load(std::memory_order_relaxed)) {
      // Leave further connections in the kernel's backlog: the bounded
      // queue of a full frontend. A closing session resumes accepting.
      l.paused = true;
      return;
    }
    SocketAddress peer;
    const int fd = accept_tcp(l.fd, &peer);
    if (fd < 0) {
      // A connection reset while in the backlog: take the next one.
      if (errno == ECONNABORTED || errno == EPROTO || errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      // Out of descriptors or memory: leave the backlog to the periodic
      // retry rather than wait for an edge that may never come.
      spdlog::warn("worker {}: accept: {}; pausing accepts", index_, std::strerror(errno));
      l.paused = true;
      return;
    }
    f->current->fetch_add(1, std::memory_order_relaxed);
    shared_.connections.fetch_add(1, std::memory_order_relaxed);
    f->counters->slice(index_).add(kConnections);
    Session* s = nullptr;
    if (f->config.mode == Mode::kHttp) {
      s = new HttpSession(*this, fd, f, peer);
    } else {
      s = new TcpSession(*this, fd, f, peer);
    }
    s->next_ = sessions_head_;
    if (sessions_head_) sessions_head_->prev_ = s;
    sessions_head_ = s;
    session_count_.fetch_add(1, std::memory_order_relaxed);
    if (auto st = watch(fd, FdKind::kClient, s, kConnectionEvents); !st) {
      spdlog::error("worker {}: {}", index_, st.error().message);
    }
    s->start();
  }
}

void Worker::resume_paused_listeners() {
  for (auto& l : listeners_) {
    if (l->paused) {
      l->paused = false;
      accept_on(*l);
    }
  }
}

void Worker::watch_server_fd(int fd, Session* session) {
  FdEntry& e = entry(fd);
  if (e.kind == FdKind::kPooled) {
    // The same socket, already registered: its events stay valid.
    e.kind = FdKind::kServer;
    e.owner = session;
    return;
  }
  if (auto st = watch(fd, FdKind::kServer, session, kConnectionEvents); !st) {
    spdlog::error("worker {}: {}", index_, st.error().message);
  }
}

void Worker::forget_fd(int fd) {
  if (fd >= 0 && fd < static_cast<int>(fds_.size())) {
    fds_[fd].kind = FdKind::kNone;
    fds_[fd].owner = nullptr;
  }
}

int Worker::pool_take(Server& server) {
  auto it = pools_.find(&server);
  if (it == pools_.end() || it->second->idle.empty()) return -1;
  const int fd = it->second->idle.back().first;
  it->second->idle.pop_back();
  return fd;
}

void Worker::pool_put(const std::shared_ptr<Server>& server, int fd,
                      const BackendConfig& settings) {
  auto& pool = pools_[server.get()];
  if (!pool) {
    pool = std::make_unique<Pool>();
    pool->server = server;
  }
  pool->idle_timeout_ms = settings.pool_idle_timeout_ms;
  if (stopping_ || static_cast<int>(pool->idle.size()) >= settings.pool_idle_max || !server->up()) {
    forget_fd(fd);
    close_fd(fd);
    return;
  }
  pool->idle.emplace_back(fd, now_ms_);
  FdEntry& e = entry(fd);
  e.kind = FdKind::kPooled;
  e.owner = pool.get();
}

void Worker::close_pooled(Pool& pool, int fd) {
  auto it = std::find_if(pool.idle.begin(), pool.idle.end(),
                         [fd](const auto& p) { return p.first == fd; });
  if (it != pool.idle.end()) pool.idle.erase(it);
  forget_fd(fd);
  close_fd(fd);
}

void Worker::sweep_pools() {
  for (auto it = pools_.begin(); it != pools_.end();) {
    Pool& pool = *it->second;
    const auto settings_timeout = pool.idle_timeout_ms;
    const bool server_gone = pool.server->removed() || !pool.server->up();
    auto& idle = pool.idle;
    for (std::size_t i = 0; i < idle.size();) {
      if (server_gone || now_ms_ - idle[i].second > settings_timeout) {
        forget_fd(idle[i].first);
        close_fd(idle[i].first);
        idle.erase(idle.begin() + static_cast<std::ptrdiff_t>(i));
      } else {
        ++i;
      }
    }
    if (idle.empty() && server_gone) {
      it = pools_.erase(it);
    } else {
      ++it;
    }
  }
}

void Worker::schedule(Session* s) {
  // Timers are lazy: a later deadline only updates the session; the entry
  // in the map is moved when it fires early. Earlier deadlines move it now.
  if (s->timer_set_) {
    if (s->deadline_ms() >= s->timer_->first) return;
    timers_.erase(s->timer_);
  }
  s->timer_ = timers_.emplace(s->deadline_ms(), s);
  s->timer_set_ = true;
}

void Worker::run_timers() {
  while (!timers_.empty() && timers_.begin()->first <= now_ms_) {
    auto it = timers_.begin();
    Session* s = it->second;
    timers_.erase(it);
    s->timer_set_ = false;
    if (s->closed()) continue;
    if (s->deadline_ms() > now_ms_) {
      schedule(s);
    } else {
      s->on_timeout();
    }
  }
}

void Worker::session_closed(Session* s) {
  if (!queue_.empty()) leave_queue(s);
  // It is freed in reap(), possibly before the next run_deferred().
  std::erase(again_, s);
  if (s->timer_set_) {
    timers_.erase(s->timer_);
    s->timer_set_ = false;
  }
  if (s->prev_) s->prev_->next_ = s->next_;
  if (s->next_) s->next_->prev_ = s->prev_;
  if (sessions_head_ == s) sessions_head_ = s->next_;
  s->prev_ = s->next_ = nullptr;
  graveyard_.push_back(s);
}

void Worker::reap() {
  if (graveyard_.empty()) return;
  bool freed = false;
  for (Session* s : graveyard_) {
    session_count_.fetch_sub(1, std::memory_order_relaxed);
    shared_.connections.fetch_sub(1, std::memory_order_relaxed);
    delete s;
    freed = true;
  }
  graveyard_.clear();
  if (freed) resume_paused_listeners();
}

void Worker::enqueue(Session* s, const std::shared_ptr<Backend>& backend) {
  queue_.push_back(Queued{s, backend});
}

void Worker::leave_queue(Session* s) {
  auto it =
      std::find_if(queue_.begin(), queue_.end(), [s](const Queued& q) { return q.session == s; });
  if (it == queue_.end()) return;
  it->backend->dequeued();
  queue_.erase(it);
}

void Worker::retry_queue() {
  // First come, first served within a backend; a full backend does not hold
  // up requests for another one behind it.
  std::vector<const Backend*> full;
  for (std::size_t i = 0; i < queue_.size();) {
    Queued& q = queue_[i];
    if (std::find(full.begin(), full.end(), q.backend.get()) != full.end()) {
      ++i;
      continue;
    }
    Backend::Choice choice = q.backend->pick(q.session->client_hash(), {});
    if (choice.outcome == PickOutcome::kFull) {
      full.push_back(q.backend.get());
      ++i;
      continue;
    }
    Session* session = q.session;
    q.backend->dequeued();
    queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(i));
    // on_dequeue may queue the session again (at the back): indices before
    // i are unaffected.
    session->on_dequeue(std::move(choice));
  }
}

bool Worker::take_pipe(int fds[2]) {
  if (!pipes_.empty()) {
    fds[0] = pipes_.back().first;
    fds[1] = pipes_.back().second;
    pipes_.pop_back();
    return true;
  }
  return ::pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0;
}

void Worker::return_pipe(int fds[2]) {
  if (static_cast<int>(pipes_.size()) < kPipeCacheMax) {
    pipes_.emplace_back(fds[0], fds[1]);
  } else {
    close_fd(fds[0]);
    close_fd(fds[1]);
  }
  fds[0] = fds[1] = -1;
}

}  // namespace bulwark::proxy
