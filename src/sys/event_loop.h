// An epoll event loop for one thread, with a wake-up eventfd through which
// other threads post tasks to it. Descriptors are registered once,
// edge-triggered, with a caller-chosen 64-bit tag as the event's data (the
// proxy's workers use descriptor and generation, and keep a table from
// descriptor to handler, so moving a connection between owners costs no
// system call).
#pragma once

#include <sys/epoll.h>

#include <functional>
#include <mutex>
#include <span>
#include <vector>

#include "core/error.h"

namespace bulwark {

class EventLoop {
 public:
  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Loop thread only.
  Status add(int fd, uint32_t events, uint64_t tag);
  Status modify(int fd, uint32_t events, uint64_t tag);
  void remove(int fd);
  // Waits up to timeout_ms (-1: forever) and returns the ready events; the
  // wake-up descriptor's events are consumed here and run posted tasks.
  // kWakeTag is reserved for that descriptor.
  std::span<const epoll_event> wait(int timeout_ms);

  // Any thread: runs `task` on the loop thread soon.
  void post(std::function<void()> task);
  // Any thread: makes wait() return.
  void wake();

 private:
  void run_posted();
  Status control(int op, int fd, uint32_t events, uint64_t tag);
  static constexpr uint64_t kWakeTag = ~0ULL;

  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::vector<epoll_event> events_;
  std::mutex mu_;
  std::vector<std::function<void()>> posted_;
};

}  // namespace bulwark
