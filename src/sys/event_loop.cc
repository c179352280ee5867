#include "sys/event_loop.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/check.h"

namespace bulwark {

EventLoop::EventLoop() : events_(256) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  BW_CHECK(epoll_fd_ >= 0, "epoll_create1 failed");
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  BW_CHECK(wake_fd_ >= 0, "eventfd failed");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeTag;
  BW_CHECK(epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) == 0, "epoll_ctl failed");
}

EventLoop::~EventLoop() {
  ::close(wake_fd_);
  ::close(epoll_fd_);
}

Status EventLoop::control(int op, int fd, uint32_t events, uint64_t tag) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = tag;
  if (epoll_ctl(epoll_fd_, op, fd, &ev) != 0)
    return make_error(Errc::kIo, std::string("epoll_ctl: ") + std::strerror(errno));
  return Ok{};
}

Status EventLoop::add(int fd, uint32_t events, uint64_t tag) {
  return control(EPOLL_CTL_ADD, fd, events, tag);
}

Status EventLoop::modify(int fd, uint32_t events, uint64_t tag) {
  return control(EPOLL_CTL_MOD, fd, events, tag);
}

void EventLoop::remove(int fd) { epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr); }

std::span<const epoll_event> EventLoop::wait(int timeout_ms) {
  const int n = epoll_wait(epoll_fd_, events_.data(), static_cast<int>(events_.size()), timeout_ms);
  if (n <= 0) return {};
  // Drop the wake-up event from what the caller sees, running the posted
  // tasks instead.
  int kept = 0;
  bool woken = false;
  for (int i = 0; i < n; ++i) {
    if (events_[i].data.u64 == kWakeTag) {
      woken = true;
    } else {
      events_[kept++] = events_[i];
    }
  }
  if (woken) {
    uint64_t value = 0;
    [[maybe_unused]] ssize_t r = ::read(wake_fd_, &value, sizeof value);
    run_posted();
  }
  return {events_.data(), static_cast<std::size_t>(kept)};
}

void EventLoop::post(std::function<void()> task) {
  {
    std::lock_guard lock(mu_);
    posted_.push_back(std::move(task));
  }
  wake();
}

void EventLoop::wake() {
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t r = ::write(wake_fd_, &one, sizeof one);
}

void EventLoop::run_posted() {
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard lock(mu_);
    tasks.swap(posted_);
  }
  for (auto& t : tasks) t();
}

}  // namespace bulwark
