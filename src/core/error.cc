#include "core/error.h"

namespace bulwark {

const char* errc_name(Errc code) {
  switch (code) {
    case Errc::kInvalid:
      return "invalid";
    case Errc::kNotFound:
      return "not_found";
    case Errc::kConflict:
      return "conflict";
    case Errc::kNoQuorum:
      return "no_quorum";
    case Errc::kEpochSuperseded:
      return "epoch_superseded";
    case Errc::kUnauthorized:
      return "unauthorized";
    case Errc::kUnavailable:
      return "unavailable";
    case Errc::kTimeout:
      return "timeout";
    case Errc::kIo:
      return "io";
  }
  return "unknown";
}

}  // namespace bulwark
