// One worker thread: an event loop that accepts connections on its own
// listening sockets and serves them to the end. Nothing here is shared with
// other workers except Backend/Server state (locked or atomic) and counters
// (each worker writes its own slice).
#pragma once

#include <atomic>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <thread>
#include <unordered_map>
#include <vector>

#include "proxy/frontend.h"
#include "proxy/http_parser.h"
#include "proxy/session.h"
#include "sys/event_loop.h"

namespace bulwark::proxy {

// Limits over all workers.
struct WorkerShared {
  std::atomic<int> connections{0};
  std::atomic<int> maxconn{100000};
};

class Worker {
 public:
  Worker(int index, WorkerShared& shared);
  ~Worker();

  // Any thread.
  void start();
  // Replaces the frontends this worker accepts for (a reload); the future
  // is ready once the worker no longer watches the sockets it dropped.
  std::future<void> set_frontends(std::vector<std::shared_ptr<Frontend>> frontends);
  // Stops accepting; sessions finish their exchange; returns at once.
  void begin_stop();
  // Closes whatever is left, then joins the thread.
  void finish_stop();
  // Wakes the loop so that it retries queued requests.
  void wake() { loop_.wake(); }
  int sessions() const { return session_count_.load(std::memory_order_relaxed); }

  // Worker thread only: services for sessions.
  int index() const { return index_; }
  int64_t now_ms() const { return now_ms_; }
  bool stopping() const { return stopping_; }
  void watch_server_fd(int fd, Session* session);
  void forget_fd(int fd);
  // An idle connection to `server` from this worker's pool, or -1.
  int pool_take(Server& server);
  // Keeps a connection for reuse (or closes it when the pool is full).
  void pool_put(const std::shared_ptr<Server>& server, int fd, const BackendConfig& settings);
  void schedule(Session* session);
  // The session stopped at its bound on work per turn with work left:
  // run it again after this batch (no event would come for it).
  void run_again(Session* session) { again_.push_back(session); }
  void session_closed(Session* session);
  void enqueue(Session* session, const std::shared_ptr<Backend>& backend);
  void leave_queue(Session* session);
  // A pipe for splice(), from a small per-worker cache: [read end, write end].
  bool take_pipe(int fds[2]);
  BufferCache& buffers() { return buffers_; }
  // Parsed heads live only until the session has rewritten them; reusing
  // one per worker keeps their header vectors from allocating per request.
  RequestHead& scratch_request() { return scratch_request_; }
  ResponseHead& scratch_response() { return scratch_response_; }
  void return_pipe(int fds[2]);

 private:
  enum class FdKind : uint8_t { kNone, kListener, kClient, kServer, kPooled };
  // Events carry descriptor and generation: a registration bumps the
  // generation, so an event of a closed socket whose number was reused in
  // the same batch is recognised as stale.
  struct FdEntry {
    FdKind kind = FdKind::kNone;
    uint32_t generation = 0;
    void* owner = nullptr;
  };
  struct Listener {
    int fd = -1;
    std::shared_ptr<Frontend> frontend;
    bool paused = false;  // at maxconn: connections wait in the backlog
  };
  struct Pool {
    std::shared_ptr<Server> server;
    std::vector<std::pair<int, int64_t>> idle;  // fd, idle since (ms)
    int idle_timeout_ms = 10000;
  };
  struct Queued {
    Session* session;
    std::shared_ptr<Backend> backend;
  };

  void run();
  void dispatch(const epoll_event& ev);
  void accept_on(Listener& listener);
  void resume_paused_listeners();
  void run_timers();
  void retry_queue();
  void sweep_pools();
  void install_frontends(const std::vector<std::shared_ptr<Frontend>>& frontends);
  Status watch(int fd, FdKind kind, void* owner, uint32_t events);
  void run_deferred();
  void close_pooled(Pool& pool, int fd);
  FdEntry& entry(int fd);
  void reap();

  const int index_;
  WorkerShared& shared_;
  EventLoop loop_;
  std::thread thread_;
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> force_close_{false};
  bool stopping_ = false;
  int64_t now_ms_ = 0;
  int64_t next_sweep_ms_ = 0;
  std::vector<FdEntry> fds_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::unordered_map<const Server*, std::unique_ptr<Pool>> pools_;
  std::multimap<int64_t, Session*> timers_;
  std::deque<Queued> queue_;
  std::vector<std::pair<int, int>> pipes_;
  BufferCache buffers_;
  RequestHead scratch_request_;
  ResponseHead scratch_response_;
  Session* sessions_head_ = nullptr;
  std::vector<Session*> graveyard_;
  std::vector<Session*> again_;
  std::atomic<int> session_count_{0};
};

}  // namespace bulwark::proxy
