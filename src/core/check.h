// Invariant checks, never for user input (that gets an Error instead).
//
// BW_CHECK is always on. BW_ASSERT states a cheap invariant of the code's
// own logic (a phase, a revision that only grows, a map that must hold a
// key); it is on in every build, so that the simulation's thousands of
// schedules and the multi-process tests run with it, and a violation stops
// the daemon before it acts on a state it does not understand. A build
// configured with -DBULWARK_ASSERTIONS=OFF compiles BW_ASSERT out (its
// condition is then not evaluated): keep conditions free of side effects.
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

#ifdef BULWARK_NO_ASSERTIONS
#define BW_ASSERT(cond, msg) \
  do {                       \
  } while (0)
#else
#define BW_ASSERT(cond, msg) BW_CHECK(cond, msg)
#endif
