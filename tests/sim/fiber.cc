#include "sim/fiber.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <utility>

#if defined(__SANITIZE_ADDRESS__)
#define BW_FIBER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BW_FIBER_ASAN 1
#endif
#endif
#ifdef BW_FIBER_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

namespace bulwark::sim {
namespace {

// Lazily mapped: only the pages a fiber touches cost memory. (AddressSanitizer
// clears the shadow of the whole stack at every switch into a fiber, so
// larger stacks cost time there.)
constexpr std::size_t kDefaultStackBytes = 1u << 20;

thread_local Fiber* t_current = nullptr;
thread_local Fiber* t_starting = nullptr;

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "fiber: %s\n", what);
  std::abort();
}

}  // namespace

Fiber::Fiber(std::function<void()> body, std::size_t stack_bytes)
    : body_(std::move(body)), stack_bytes_(stack_bytes ? stack_bytes : kDefaultStackBytes) {
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  stack_ = ::mmap(nullptr, stack_bytes_ + page, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (stack_ == MAP_FAILED) die("cannot map a stack");
  // A guard page below the stack: an overflow faults instead of corrupting.
  ::mprotect(stack_, page, PROT_NONE);
  if (::getcontext(&context_) != 0) die("getcontext failed");
  context_.uc_stack.ss_sp = static_cast<char*>(stack_) + page;
  context_.uc_stack.ss_size = stack_bytes_;
  context_.uc_link = nullptr;
  ::makecontext(&context_, &Fiber::entry, 0);
}

Fiber::~Fiber() {
  if (started_ && !finished_) {
    // Unwind the body's stack: its wait() throws FiberCancelled.
    cancelling_ = true;
    resume();
    if (!finished_) die("a cancelled fiber waited again");
  }
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  ::munmap(stack_, stack_bytes_ + page);
}

Fiber* Fiber::current() { return t_current; }

void Fiber::entry() {
  Fiber* self = t_starting;
#ifdef BW_FIBER_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &self->caller_stack_, &self->caller_stack_bytes_);
#endif
  try {
    if (!self->cancelling_) self->body_();
  } catch (const FiberCancelled&) {
    // The fiber is being destroyed; its stack is unwound.
  }
  self->finished_ = true;
  self->switch_out(true);
  die("a finished fiber was resumed");
}

void Fiber::resume() {
  if (finished_) return;
  previous_ = t_current;
  t_current = this;
  switch_in();
  t_current = previous_;
}

void Fiber::switch_in() {
  if (!started_) {
    started_ = true;
    t_starting = this;
  }
#ifdef BW_FIBER_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, context_.uc_stack.ss_sp, context_.uc_stack.ss_size);
#endif
  if (::swapcontext(&caller_, &context_) != 0) die("swapcontext failed");
#ifdef BW_FIBER_ASAN
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
}

void Fiber::switch_out(bool final) {
#ifdef BW_FIBER_ASAN
  // A finished fiber's fake stack is released (null save slot).
  __sanitizer_start_switch_fiber(final ? nullptr : &fake_stack_, caller_stack_,
                                 caller_stack_bytes_);
#else
  (void) final;
#endif
  if (::swapcontext(&context_, &caller_) != 0) die("swapcontext failed");
#ifdef BW_FIBER_ASAN
  __sanitizer_finish_switch_fiber(fake_stack_, &caller_stack_, &caller_stack_bytes_);
#endif
}

void Fiber::wait() {
  Fiber* self = t_current;
  if (self == nullptr) die("wait() outside a fiber");
  self->switch_out(false);
  if (self->cancelling_) throw FiberCancelled{};
}

}  // namespace bulwark::sim
