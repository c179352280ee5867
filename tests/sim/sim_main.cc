// bulwark_sim: runs simulated failure schedules (see README.md).
//
//   bulwark_sim --seed N [--verbose]      replay one seed (verbose: every event)
//   bulwark_sim --seeds COUNT [--first S] [--jobs J]
//                                         run COUNT seeds from S (default 1)
//                                         on J threads (default: every core)
//   --no-lease-check                      do not check DESIGN.md's lease promise,
//                                         only what breaking it leads to
//   --expect-violation N                  with --seeds: succeed only if some seed
//                                         breaks invariant N (the mutation check
//                                         of a build with a deliberate bug)
//
// Exits 0 when every seed kept every invariant, 1 otherwise, 2 on bad usage.
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sim/schedule.h"
#include "sim/sim_cluster.h"

namespace {

using bulwark::sim::Schedule;
using bulwark::sim::SimCluster;
using bulwark::sim::SimOptions;
using bulwark::sim::SimResult;

// The daemons' own log lines (agent, coordinator, fencing) go to the trace
// of the run on the thread that logs, stamped with simulated time.
class TraceSink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    bulwark::sim::Trace* trace = bulwark::sim::Trace::current();
    if (trace == nullptr) return;
    trace->add(trace->actor(), "log: " + std::string(msg.payload.data(), msg.payload.size()));
  }
  void flush_() override {}
};

constexpr std::size_t kTraceTail = 60;
// A run of many seeds shows the trace of its first failures, lists the
// next ones in a line each, and then only counts them.
constexpr std::size_t kFailuresShownMax = 3;
constexpr std::size_t kFailuresListedMax = 500;
constexpr uint64_t kJobsMax = 64;

std::string seed_text(uint64_t seed) {
  return std::to_string(static_cast<unsigned long long>(seed));
}

std::string one_line(const SimResult& r) {
  return "FAILED seed " + seed_text(r.seed) + " at " + std::to_string(r.failed_at_ms) +
         " ms: " + r.failure + "\n";
}

std::string full_report(const SimResult& r, const Schedule& s, const SimCluster& cluster,
                        const SimOptions& options) {
  const std::string flags = options.lease_check ? "" : " --no-lease-check";
  std::string out = "\n" + one_line(r) + describe(s) + "\nlast events:\n";
  out += cluster.trace().tail(kTraceTail);
  out += "replay: " +
         (options.lease_check ? "make sim SEED=" + seed_text(r.seed) + "   (or " : std::string()) +
         "bulwark_sim --seed " + seed_text(r.seed) + flags + " --verbose" +
         (options.lease_check ? ")" : "") + "\n";
  return out;
}

int usage() {
  std::fprintf(stderr,
               "usage: bulwark_sim --seed N [--verbose] [--no-lease-check]\n"
               "       bulwark_sim --seeds COUNT [--first SEED] [--jobs THREADS] "
               "[--no-lease-check] [--expect-violation INVARIANT]\n");
  return 2;
}

bool parse_u64(const char* s, uint64_t& out) {
  char* end = nullptr;
  out = std::strtoull(s, &end, 10);
  return end != s && *end == '\0';
}

int replay(uint64_t seed, const SimOptions& options) {
  const Schedule s = bulwark::sim::make_schedule(seed);
  SimCluster cluster(s, options);
  if (options.verbose) std::printf("%s\n", describe(s).c_str());
  const SimResult r = cluster.run();
  if (!r.ok) {
    std::fprintf(stderr, "%s", full_report(r, s, cluster, options).c_str());
    return 1;
  }
  std::printf("seed %s: ok (%llu process starts, store at revision %lld)\n",
              seed_text(seed).c_str(), static_cast<unsigned long long>(r.starts),
              static_cast<long long>(r.store_revision));
  return 0;
}

// The marker of a broken invariant in a seed's one-line report.
std::string invariant_marker(uint64_t invariant) {
  return ": invariant " + std::to_string(invariant) + ": ";
}

// --expect-violation N: the build has a deliberate safety bug (a mutation),
// and some seed must catch it as a broken invariant N.
int expect_violation(const std::vector<std::string>& lines, uint64_t invariant) {
  const std::string marker = invariant_marker(invariant);
  const auto caught = std::find_if(lines.begin(), lines.end(), [&](const std::string& l) {
    return l.find(marker) != std::string::npos;
  });
  if (caught == lines.end()) {
    std::fprintf(stderr, "no seed caught the deliberate bug of this build as invariant %llu\n",
                 static_cast<unsigned long long>(invariant));
    return 1;
  }
  std::printf("the deliberate bug was caught: %s", caught->c_str());
  return 0;
}

// expect: 0, or the invariant a mutation must break (--expect-violation).
int run_many(uint64_t first, uint64_t count, uint64_t jobs, const SimOptions& options,
             uint64_t expect) {
  const auto t0 = std::chrono::steady_clock::now();
  // Seeds are independent worlds: threads take the next one, and reports
  // are printed in seed order afterwards, so the output does not depend on
  // the thread count.
  std::vector<std::string> reports(count), lines(count);
  std::atomic<uint64_t> next{0};
  std::atomic<bool> caught{false};  // --expect-violation: no need to go on
  const auto worker = [&] {
    for (uint64_t k = next++; k < count && !caught; k = next++) {
      const Schedule s = bulwark::sim::make_schedule(first + k);
      SimCluster cluster(s, options);
      const SimResult r = cluster.run();
      if (r.ok) continue;
      reports[k] = full_report(r, s, cluster, options);
      lines[k] = one_line(r);
      if (expect && lines[k].find(invariant_marker(expect)) != std::string::npos) caught = true;
    }
  };
  std::vector<std::thread> threads;
  for (uint64_t j = 0; j < jobs; ++j) threads.emplace_back(worker);
  for (auto& t : threads) t.join();

  if (expect) return expect_violation(lines, expect);
  std::size_t failures = 0;
  for (uint64_t k = 0; k < count; ++k) {
    if (lines[k].empty()) continue;
    ++failures;
    if (failures <= kFailuresShownMax) {
      std::fprintf(stderr, "%s", reports[k].c_str());
    } else if (failures <= kFailuresListedMax) {
      std::fprintf(stderr, "%s", lines[k].c_str());
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%llu seeds from %s on %llu threads: %zu failed, %.1f s (%.0f seeds/s)\n",
              static_cast<unsigned long long>(count), seed_text(first).c_str(),
              static_cast<unsigned long long>(jobs), failures, secs,
              secs > 0 ? static_cast<double>(count) / secs : 0.0);
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t seed = 0, count = 0, first = 1, jobs = 0, expect = 0;
  bool one = false;
  SimOptions options;
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (!std::strcmp(argv[i], "--seed") && has_value) {
      if (!parse_u64(argv[++i], seed)) return usage();
      one = true;
    } else if (!std::strcmp(argv[i], "--seeds") && has_value) {
      if (!parse_u64(argv[++i], count)) return usage();
    } else if (!std::strcmp(argv[i], "--first") && has_value) {
      if (!parse_u64(argv[++i], first)) return usage();
    } else if (!std::strcmp(argv[i], "--jobs") && has_value) {
      if (!parse_u64(argv[++i], jobs)) return usage();
    } else if (!std::strcmp(argv[i], "--verbose")) {
      options.verbose = true;
    } else if (!std::strcmp(argv[i], "--no-lease-check")) {
      options.lease_check = false;
    } else if (!std::strcmp(argv[i], "--expect-violation") && has_value) {
      if (!parse_u64(argv[++i], expect) || expect < 1 || expect > 4) return usage();
    } else {
      return usage();
    }
  }
  if (one == (count > 0) || (options.verbose && !one) || (expect && one)) return usage();
  // The daemons log through spdlog, into the trace.
  auto logger = std::make_shared<spdlog::logger>("sim", std::make_shared<TraceSink>());
  logger->set_level(spdlog::level::info);
  spdlog::set_default_logger(logger);
  if (one) return replay(seed, options);
  if (jobs == 0) jobs = std::max(1u, std::thread::hardware_concurrency());
  return run_many(first, count, std::min({jobs, count, kJobsMax}), options, expect);
}
