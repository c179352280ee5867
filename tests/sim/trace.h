// The recent history of one simulated run: faults, store writes, lease
// changes, operations and ground-truth process changes, each stamped with
// the simulated time. A failing seed prints the tail; a replay with
// --verbose prints every event as it happens (and the daemons' own logs).
#pragma once

#include <cstdint>
#include <cstdio>
#include <deque>
#include <string>

namespace bulwark::sim {

class Trace {
 public:
  explicit Trace(std::size_t capacity) : capacity_(capacity) {}

  // The trace of the run on this thread (the daemons' log lines go there);
  // null outside a run.
  static Trace*& current() {
    thread_local Trace* trace = nullptr;
    return trace;
  }

  void set_echo(bool echo) { echo_ = echo; }
  bool echo() const { return echo_; }
  void set_now(int64_t now_ms) { now_ms_ = now_ms; }
  // Whose code runs now: the daemons' own log lines are stamped with it.
  void set_actor(const std::string& who) { actor_ = who; }
  const std::string& actor() const { return actor_; }

  void add(const std::string& who, const std::string& what) {
    std::string line = stamp() + " " + who + ": " + what;
    if (echo_) std::printf("%s\n", line.c_str());
    // Bounded: only the tail is ever printed.
    if (events_.size() == capacity_) events_.pop_front();
    events_.push_back(std::move(line));
  }

  // The last `count` events, one per line.
  std::string tail(std::size_t count) const {
    std::string out;
    const std::size_t from = events_.size() > count ? events_.size() - count : 0;
    for (std::size_t i = from; i < events_.size(); ++i) out += "  " + events_[i] + "\n";
    return out;
  }

  std::string stamp() const {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%6lld.%03lld", static_cast<long long>(now_ms_ / 1000),
                  static_cast<long long>(now_ms_ % 1000));
    return buf;
  }

 private:
  std::size_t capacity_;
  bool echo_ = false;
  int64_t now_ms_ = 0;
  std::string actor_ = "-";
  std::deque<std::string> events_;
};

}  // namespace bulwark::sim
