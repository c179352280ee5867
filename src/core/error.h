// Errors as values: every boundary (parsing, I/O, store, API) returns a
// Result<T> whose error carries a precise, user-facing message.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace bulwark {

enum class Errc {
  kInvalid,          // the input is wrong; retrying the same input fails again
  kNotFound,         // the named thing does not exist
  kConflict,         // a compare failed: someone else changed it first
  kNoQuorum,         // this node does not hold the quorum lease
  kEpochSuperseded,  // a newer coordinator epoch exists
  kUnauthorized,     // missing or wrong credentials
  kUnavailable,      // a dependency (etcd, a peer) cannot be reached now
  kTimeout,          // a deadline passed; the outcome may be unknown
  kIo,               // the operating system refused
};

const char* errc_name(Errc code);

struct Error {
  Errc code;
  std::string message;
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Result of an operation that yields nothing but may fail.
struct Ok {};
using Status = Result<Ok>;

inline Error make_error(Errc code, std::string message) { return Error{code, std::move(message)}; }

}  // namespace bulwark
