// Invariant checks. BW_CHECK is always on; BW_ASSERT only in debug builds.
// Never use either on user input: that gets an Error instead.
#pragma once

#include <cstdio>
#include <cstdlib>

#define BW_CHECK(cond, msg)                                                                  \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      std::fprintf(stderr, "%s:%d: check failed: %s: %s\n", __FILE__, __LINE__, #cond, msg); \
      std::abort();                                                                          \
    }                                                                                        \
  } while (0)

#ifdef NDEBUG
#define BW_ASSERT(cond, msg) \
  do {                       \
  } while (0)
#else
#define BW_ASSERT(cond, msg) BW_CHECK(cond, msg)
#endif
