// Exit codes of the `bulwark` CLI, documented in docs/cli.md.
#pragma once

#include "core/error.h"

namespace bulwark {

constexpr int kCliOk = 0;
constexpr int kCliFailed = 1;        // unavailable, conflict, timeout, internal
constexpr int kCliBadInput = 2;      // usage, invalid input, not found
constexpr int kCliNoQuorum = 3;      // the node asked does not hold the quorum lease
constexpr int kCliUnauthorized = 4;  // missing or wrong admin token

inline int exit_code_for(Errc code) {
  switch (code) {
    case Errc::kInvalid:
    case Errc::kNotFound:
      return kCliBadInput;
    case Errc::kNoQuorum:
      return kCliNoQuorum;
    case Errc::kUnauthorized:
      return kCliUnauthorized;
    default:
      return kCliFailed;
  }
}

}  // namespace bulwark
