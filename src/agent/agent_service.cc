#include "agent/agent_service.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "sys/process.h"

namespace bulwark {
namespace {

constexpr uint64_t kSignalTag = 1;
// At shutdown, the final status write waits this long between looks.
constexpr int64_t kFinalPollMs = 10;
// At shutdown, how long the final status waits for a write in flight.
constexpr int64_t kFinalWriteWaitMs = 2000;

}  // namespace

AgentService::AgentService(const Clock& clock, Store& store, const MembershipService& membership,
                           AgentServiceOptions options)
    : clock_(clock),
      store_(store),
      membership_(membership),
      options_(std::move(options)),
      runner_(clock, loop_, options_.runner),
      agent_(clock, runner_, options_.agent),
      agent_loop_(clock, agent_, runner_, *this, options_.agent.node) {}

AgentService::~AgentService() {
  stop_ = true;
  loop_.wake();
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard lock(writer_mu_);
    writer_stop_ = true;
  }
  writer_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  if (signal_fd_ >= 0) ::close(signal_fd_);
}

Status AgentService::start() {
  if (!options_.watchdog.device.empty()) {
    // A marker in the runtime directory (emptied at boot) says an earlier
    // daemon of this boot armed the watchdog and never disarmed it: it
    // crashed, and what it ran exclusively may still run.
    const std::string marker = options_.runner.runtime_dir + "/watchdog.armed";
    const bool recovering = ::access(marker.c_str(), F_OK) == 0;
    agent_loop_.set_watchdog_recovering(recovering);
    if (recovering) {
      // Opening the device feeds it: the countdown the crashed daemon left
      // must run on until this one knows what runs (feed_watchdog).
      spdlog::warn(
          "agent: the watchdog was left armed by a crashed bulwarkd; it is opened only "
          "once every resource is probed");
    } else if (auto st = arm_watchdog(); !st) {
      return st;
    }
  }
  // SIGCHLD is blocked in every thread (the daemon blocks it before any
  // thread starts); the signalfd receives it.
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  signal_fd_ = ::signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signal_fd_ < 0) return make_error(Errc::kIo, "signalfd failed");
  if (auto st = loop_.add(signal_fd_, EPOLLIN, kSignalTag); !st) return st;
  writer_ = std::thread([this] { run_writer(); });
  thread_ = std::thread([this] { run(); });
  return Ok{};
}

void AgentService::run_writer() {
  while (true) {
    StatusJob write;
    {
      std::unique_lock lock(writer_mu_);
      writer_cv_.wait(lock, [this] { return writer_stop_ || writer_job_.has_value(); });
      if (!writer_job_) return;  // stopping, nothing left to write
      write = std::move(*writer_job_);
      writer_job_.reset();
    }
    auto result = store_.writes().put_status(options_.agent.node, write.record, write.claim,
                                             write.record_revision);
    loop_.post([this, write = std::move(write), result = std::move(result)] {
      agent_loop_.on_written(write, result);
    });
  }
}

void AgentService::submit(StatusJob job) {
  {
    std::lock_guard lock(writer_mu_);
    writer_job_ = std::move(job);
  }
  writer_cv_.notify_one();
}

AgentService::Info AgentService::info() const {
  std::lock_guard lock(info_mu_);
  Info out = info_;
  const int64_t now = clock_.mono_ms();
  out.published_ago_ms = committed_mono_ms_ < 0 ? -1 : now - committed_mono_ms_;
  out.loop_ago_ms = info_.loop_ago_ms < 0 ? -1 : now - info_.loop_ago_ms;
  return out;
}

void AgentService::shutdown(int timeout_ms) {
  shutdown_deadline_ms_ = clock_.mono_ms() + timeout_ms;
  shutting_down_ = true;
  loop_.wake();
  if (thread_.joinable()) thread_.join();
}

void AgentService::after_step(const ClusterState& state, NodeAgent& agent) {
  runner_.follow(state, options_.agent.node, agent.status());
  for (const ServerDrain& d : runner_.take_drained()) agent.acknowledge(d.resource, d.node, d.seq);
}

Status AgentService::arm_watchdog() {
  if (auto st = watchdog_.open(options_.watchdog.device, options_.watchdog.timeout_ms); !st)
    return st;
  const std::string marker = options_.runner.runtime_dir + "/watchdog.armed";
  if (FILE* f = std::fopen(marker.c_str(), "w")) std::fclose(f);
  spdlog::info("agent: watchdog {} armed ({} ms)", options_.watchdog.device,
               watchdog_.timeout_ms());
  return Ok{};
}

void AgentService::finish_shutdown() {
  // The final record: after any write in flight (bounded), written directly.
  for (int waited = 0; agent_loop_.write_in_flight() && waited < kFinalWriteWaitMs;
       waited += kFinalPollMs) {
    for (const epoll_event& ev : loop_.wait(static_cast<int>(kFinalPollMs))) {
      if (ClassDispatcher::owns(ev.data.u64)) runner_.on_event(ev.data.u64, ev.events);
    }
  }
  if (auto last = agent_loop_.final_record()) {
    auto r = store_.writes().put_status(options_.agent.node, last->record, std::nullopt,
                                        last->record_revision);
    if (!r) spdlog::warn("agent: cannot publish this node's final status: {}", r.error().message);
  }
  // A clean end: nothing exclusive runs any more (or the deadline passed,
  // and then the countdown stays armed).
  if (!agent_.exclusive_active() && watchdog_.armed()) {
    watchdog_.disarm();
    ::unlink((options_.runner.runtime_dir + "/watchdog.armed").c_str());
  }
}

void AgentService::reap() {
  signalfd_siginfo info;
  while (::read(signal_fd_, &info, sizeof info) == sizeof info) {
  }
  reap_orphans();
}

void AgentService::run() {
  int64_t seen_revision = -1;
  ClusterState state;
  bool shutdown_begun = false;
  while (!stop_) {
    if (const int64_t rev = store_.cache_info().revision; rev != seen_revision) {
      state = store_.state();
      seen_revision = rev;
    }
    if (shutting_down_ && !shutdown_begun) {
      spdlog::info("agent: stopping every resource on this node");
      agent_.begin_shutdown();
      shutdown_begun = true;
    }
    const int64_t due = agent_loop_.turn(state);
    {
      std::lock_guard lock(info_mu_);
      info_.probed = agent_.probed();
      info_.write_in_flight = agent_loop_.write_in_flight();
      info_.write_error = agent_loop_.write_error();
      committed_mono_ms_ = agent_loop_.committed_mono_ms();
      info_.loop_ago_ms = clock_.mono_ms();  // a stamp; info() turns it into an age
    }
    if (shutdown_begun && (agent_.idle() || clock_.mono_ms() >= shutdown_deadline_ms_)) {
      finish_shutdown();
      break;
    }
    const int64_t now = clock_.mono_ms();
    for (const epoll_event& ev : loop_.wait(static_cast<int>(std::max<int64_t>(due - now, 0)))) {
      if (ev.data.u64 == kSignalTag) {
        reap();
      } else if (ClassDispatcher::owns(ev.data.u64)) {
        runner_.on_event(ev.data.u64, ev.events);
      }
    }
  }
}

}  // namespace bulwark
