// The Linux watchdog device (/dev/watchdog; softdog where there is no
// hardware one): once opened, the machine is reset unless keepalive() is
// called within the timeout. bulwarkd uses it to cover what a lease cannot:
// a node whose stop of an exclusive resource hangs, or whose bulwarkd hangs
// or dies while its resources keep running. Closing with disarm() (the
// "magic close") stops the countdown for a clean shutdown.
//
// Thread-safety: one owner thread.
#pragma once

#include <string>

#include "core/error.h"

namespace bulwark {

class Watchdog {
 public:
  Watchdog() = default;
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Opens the device and sets its timeout (whole seconds, rounded up); the
  // timeout the driver actually took is timeout_ms().
  Status open(const std::string& device, int timeout_ms);
  bool armed() const { return fd_ >= 0; }
  int timeout_ms() const { return timeout_ms_; }
  Status keepalive();
  // Stops the countdown and closes the device (clean shutdown only).
  void disarm();

 private:
  int fd_ = -1;
  int timeout_ms_ = 0;
};

}  // namespace bulwark
