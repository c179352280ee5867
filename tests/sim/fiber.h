// Cooperative threads for the simulation: a simulated daemon's threads run
// bulwarkd's real, blocking code (a store call blocks its caller for
// simulated time) on fibers that the simulated machine resumes, one at a
// time, in a fixed order. Nothing runs concurrently, so a seed replays
// exactly.
//
// A fiber runs until it calls Fiber::wait (from inside its body), which
// returns to whoever resumed it. Destroying a fiber that is suspended in
// wait() unwinds its stack: wait() throws FiberCancelled, which the body
// must let through (a daemon that dies mid-call ends its threads this way,
// and their destructors run).
#pragma once

#include <ucontext.h>

#include <cstddef>
#include <functional>

namespace bulwark::sim {

struct FiberCancelled {};

class Fiber {
 public:
  explicit Fiber(std::function<void()> body, std::size_t stack_bytes = 0);
  ~Fiber();
  Fiber(const Fiber&) = delete;
  Fiber& operator=(const Fiber&) = delete;

  // Runs the fiber until it waits again or its body returns.
  void resume();
  bool finished() const { return finished_; }

  // Inside a fiber: back to the resumer until resumed again. Throws
  // FiberCancelled when the fiber is being destroyed.
  static void wait();
  // The fiber running now; null outside any.
  static Fiber* current();

 private:
  static void entry();
  void switch_in();
  void switch_out(bool final);

  std::function<void()> body_;
  void* stack_ = nullptr;
  std::size_t stack_bytes_ = 0;
  ucontext_t context_{};
  ucontext_t caller_{};
  bool started_ = false;
  bool finished_ = false;
  bool cancelling_ = false;
  Fiber* previous_ = nullptr;
  // AddressSanitizer's bookkeeping of the stack switches (unused without it).
  [[maybe_unused]] void* fake_stack_ = nullptr;
  [[maybe_unused]] const void* caller_stack_ = nullptr;
  [[maybe_unused]] std::size_t caller_stack_bytes_ = 0;
};

}  // namespace bulwark::sim
