#include "sys/watchdog.h"

#include <fcntl.h>
#include <linux/watchdog.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace bulwark {

Watchdog::~Watchdog() {
  // Not disarmed: a daemon that ends without a clean shutdown leaves the
  // countdown running, which is the point.
  if (fd_ >= 0) ::close(fd_);
}

Status Watchdog::open(const std::string& device, int timeout_ms) {
  fd_ = ::open(device.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd_ < 0)
    return make_error(Errc::kIo, "watchdog " + device + ": " + std::strerror(errno) +
                                     " (is the softdog module loaded?)");
  int seconds = (timeout_ms + 999) / 1000;
  if (::ioctl(fd_, WDIOC_SETTIMEOUT, &seconds) != 0 ||
      ::ioctl(fd_, WDIOC_GETTIMEOUT, &seconds) != 0) {
    const std::string why = std::strerror(errno);
    disarm();
    return make_error(Errc::kIo, "watchdog " + device + ": cannot set the timeout: " + why);
  }
  timeout_ms_ = seconds * 1000;
  return keepalive();
}

Status Watchdog::keepalive() {
  if (fd_ < 0) return Ok{};
  if (::ioctl(fd_, WDIOC_KEEPALIVE, 0) != 0)
    return make_error(Errc::kIo, std::string("watchdog keepalive: ") + std::strerror(errno));
  return Ok{};
}

void Watchdog::disarm() {
  if (fd_ < 0) return;
  // The magic close: 'V' then close() stops drivers without nowayout.
  const ssize_t n = ::write(fd_, "V", 1);
  (void)n;
  ::close(fd_);
  fd_ = -1;
}

}  // namespace bulwark
