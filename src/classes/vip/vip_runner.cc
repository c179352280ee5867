#include "classes/vip/vip_runner.h"

#include <spdlog/spdlog.h>
#include <sys/epoll.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

namespace bulwark {
namespace fs = std::filesystem;

namespace {

std::string prefixed(const VipSpec& v) { return v.address + "/" + std::to_string(v.prefix); }

}  // namespace

std::string loopback_vip_marker(const std::string& runtime_dir, const std::string& resource) {
  return runtime_dir + "/vip-" + resource + ".held";
}

ClassRunnerFactory vip_class() {
  return [](const ClassContext& context) -> std::unique_ptr<ClassRunner> {
    return std::make_unique<VipRunner>(context.clock, context.loop, context.runtime_dir,
                                       context.tag_base);
  };
}

VipRunner::VipRunner(const Clock& clock, EventLoop& loop, std::string runtime_dir,
                     uint64_t tag_base)
    : clock_(clock), loop_(loop), runtime_dir_(std::move(runtime_dir)), tag_base_(tag_base) {}

VipRunner::~VipRunner() {
  for (auto& [id, s] : starts_) loop_.remove(s.probe->fd());
}

Result<Rtnetlink*> VipRunner::rtnl() {
  if (!rtnl_) {
    auto opened = Rtnetlink::open();
    if (!opened) return opened.error();
    rtnl_ = std::move(*opened);
  }
  return rtnl_.get();
}

void VipRunner::complete(const OpRequest& r, OpOutcome outcome, std::string detail) {
  completions_.push_back(OpCompletion{r.id, r.vars.resource, r.kind, outcome, std::move(detail)});
}

void VipRunner::take_completions(std::vector<OpCompletion>& out) {
  for (auto& c : completions_) out.push_back(std::move(c));
  completions_.clear();
}

void VipRunner::begin(const OpRequest& r) {
  switch (r.kind) {
    case OpKind::kProbe:
    case OpKind::kMonitor:
      return check(r);
    case OpKind::kStart:
      return begin_start(r);
    case OpKind::kStop:
      return begin_stop(r);
    case OpKind::kPromote:
    case OpKind::kDemote:
      return complete(r, OpOutcome::kFailed, "a vip has no promoted role");
    case OpKind::kNotify:
      return complete(r, OpOutcome::kFailed, "a vip has no notify action");
    case OpKind::kReload:
      return complete(r, OpOutcome::kFailed, "a vip is restarted, not reloaded");
  }
}

void VipRunner::check(const OpRequest& r) {
  const VipSpec& v = r.spec.agent.vip;
  if (v.loopback) {
    const bool held = fs::exists(loopback_vip_marker(runtime_dir_, r.vars.resource));
    return complete(r, held ? OpOutcome::kOk : OpOutcome::kNotRunning, held ? "held here" : "");
  }
  auto nl = rtnl();
  if (!nl) return complete(r, OpOutcome::kFailed, nl.error().message);
  auto iface = (*nl)->interface(v.interface);
  if (!iface) {
    // No such interface here: the address cannot be held on it.
    if (iface.error().code == Errc::kNotFound)
      return complete(r, OpOutcome::kNotRunning, iface.error().message);
    return complete(r, OpOutcome::kFailed, iface.error().message);
  }
  auto address = parse_ip_address(v.address);
  if (!address) return complete(r, OpOutcome::kFailed, address.error().message);
  auto has = (*nl)->has_address(*iface, *address);
  if (!has) return complete(r, OpOutcome::kFailed, has.error().message);
  if (*has) return complete(r, OpOutcome::kOk, "on " + v.interface);
  complete(r, OpOutcome::kNotRunning, "not on " + v.interface);
}

void VipRunner::begin_start(const OpRequest& r) {
  const VipSpec& v = r.spec.agent.vip;
  const std::string& resource = r.vars.resource;
  if (v.loopback) {
    const std::string marker = loopback_vip_marker(runtime_dir_, resource);
    std::ofstream(marker) << v.address << "\n";
    if (!fs::exists(marker)) return complete(r, OpOutcome::kFailed, "cannot write " + marker);
    return complete(r, OpOutcome::kOk, "held here (loopback)");
  }
  auto nl = rtnl();
  if (!nl) return complete(r, OpOutcome::kFailed, nl.error().message);
  auto iface = (*nl)->interface(v.interface);
  if (!iface) return complete(r, OpOutcome::kFailed, iface.error().message);
  if (!iface->up) return complete(r, OpOutcome::kFailed, v.interface + " is down");
  auto address = parse_ip_address(v.address);
  if (!address) return complete(r, OpOutcome::kFailed, address.error().message);
  auto has = (*nl)->has_address(*iface, *address);
  if (!has) return complete(r, OpOutcome::kFailed, has.error().message);
  const int64_t now = clock_.mono_ms();
  if (*has) {
    // Already here (a start after a failed one, or after a daemon
    // restart): announced again, since neighbours may point elsewhere.
    announcing_[resource] = Announcing{*iface, *address, now, 0};
    announce_due(resource, announcing_[resource], now);
    return complete(r, OpOutcome::kOk, "already on " + v.interface + "; announced");
  }
  Start s{r, *iface, *address, nullptr, 0, now + v.conflict_probe_ms, now + r.timeout_ms};
  if (v.conflict_probe_ms > 0) {
    auto probe = AddressConflictProbe::start(*iface, *address);
    if (!probe) return complete(r, OpOutcome::kFailed, probe.error().message);
    s.probe = std::move(*probe);
    s.tag = tag_base_ | next_tag_++;
    if (auto st = loop_.add(s.probe->fd(), EPOLLIN, s.tag); !st)
      return complete(r, OpOutcome::kFailed, st.error().message);
  }
  auto [it, added] = starts_.emplace(r.id, std::move(s));
  if (v.conflict_probe_ms == 0) take(it->second);
}

void VipRunner::on_event(uint64_t tag, uint32_t /*events*/) {
  for (auto& [id, s] : starts_) {
    if (s.tag != tag) continue;
    if (auto mac = s.probe->on_readable()) {
      return finish_start(id, OpOutcome::kFailed,
                          s.request.spec.agent.vip.address + " is in use on " + s.iface.name +
                              " by " + *mac + ": not taken");
    }
    return;
  }
}

void VipRunner::take(Start& s) {
  // A last look at what arrived during the window.
  if (s.probe) {
    if (auto mac = s.probe->on_readable()) {
      return finish_start(s.request.id, OpOutcome::kFailed,
                          s.request.spec.agent.vip.address + " is in use on " + s.iface.name +
                              " by " + *mac + ": not taken");
    }
  }
  const VipSpec& v = s.request.spec.agent.vip;
  auto nl = rtnl();
  if (!nl) return finish_start(s.request.id, OpOutcome::kFailed, nl.error().message);
  const Status added = (*nl)->add_address(s.iface, s.address, v.prefix, v.label);
  if (!added && added.error().code != Errc::kConflict)
    return finish_start(s.request.id, OpOutcome::kFailed, added.error().message);
  const std::string& resource = s.request.vars.resource;
  const int64_t now = clock_.mono_ms();
  announcing_[resource] = Announcing{s.iface, s.address, now, 0};
  announce_due(resource, announcing_[resource], now);
  spdlog::info("vip: {} on {}", prefixed(v), v.interface);
  finish_start(s.request.id, OpOutcome::kOk, "on " + v.interface + ", announced");
}

void VipRunner::announce_due(const std::string& resource, Announcing& a, int64_t now) {
  while (a.sent < kVipAnnounceAtMs.size() && now >= a.taken_ms + kVipAnnounceAtMs[a.sent]) {
    const Status st = a.address.family == AF_INET ? announce_ipv4(a.iface, a.address)
                                                  : announce_ipv6(a.iface, a.address);
    // A lost announcement is covered by the next one; neighbours also
    // learn the address when they next resolve it.
    if (!st) spdlog::warn("vip: {}: cannot announce: {}", resource, st.error().message);
    ++a.sent;
  }
}

void VipRunner::finish_start(uint64_t id, OpOutcome outcome, std::string detail) {
  auto it = starts_.find(id);
  if (it == starts_.end()) return;
  if (it->second.probe) loop_.remove(it->second.probe->fd());
  complete(it->second.request, outcome, std::move(detail));
  starts_.erase(it);
}

void VipRunner::begin_stop(const OpRequest& r) {
  const VipSpec& v = r.spec.agent.vip;
  const std::string& resource = r.vars.resource;
  if (v.loopback) {
    std::error_code ec;
    fs::remove(loopback_vip_marker(runtime_dir_, resource), ec);
    if (ec) return complete(r, OpOutcome::kFailed, "cannot remove the marker: " + ec.message());
    return complete(r, OpOutcome::kOk, "released (loopback)");
  }
  announcing_.erase(resource);
  auto nl = rtnl();
  if (!nl) return complete(r, OpOutcome::kFailed, nl.error().message);
  auto iface = (*nl)->interface(v.interface);
  if (!iface) {
    if (iface.error().code == Errc::kNotFound)
      return complete(r, OpOutcome::kOk, iface.error().message + ": nothing to remove");
    return complete(r, OpOutcome::kFailed, iface.error().message);
  }
  auto address = parse_ip_address(v.address);
  if (!address) return complete(r, OpOutcome::kFailed, address.error().message);
  if (auto st = (*nl)->delete_address(*iface, *address, v.prefix); !st)
    return complete(r, OpOutcome::kFailed, st.error().message);
  spdlog::info("vip: {} removed from {}", prefixed(v), v.interface);
  complete(r, OpOutcome::kOk, "removed from " + v.interface);
}

void VipRunner::cancel(uint64_t id) {
  auto it = starts_.find(id);
  if (it == starts_.end()) return;
  if (it->second.probe) loop_.remove(it->second.probe->fd());
  starts_.erase(it);
}

void VipRunner::tick() {
  const int64_t now = clock_.mono_ms();
  std::vector<uint64_t> due;
  for (const auto& [id, s] : starts_) {
    if (now >= s.probe_until_ms || now >= s.deadline_ms) due.push_back(id);
  }
  for (uint64_t id : due) {
    auto it = starts_.find(id);
    if (it == starts_.end()) continue;
    if (now >= it->second.deadline_ms) {
      finish_start(id, OpOutcome::kTimeout,
                   "not done within " + std::to_string(it->second.request.timeout_ms) + " ms");
    } else {
      take(it->second);
    }
  }
  for (auto it = announcing_.begin(); it != announcing_.end();) {
    announce_due(it->first, it->second, now);
    it = it->second.sent >= kVipAnnounceAtMs.size() ? announcing_.erase(it) : std::next(it);
  }
}

int64_t VipRunner::next_deadline_ms() const {
  int64_t next = INT64_MAX;
  for (const auto& [id, s] : starts_) next = std::min({next, s.probe_until_ms, s.deadline_ms});
  for (const auto& [resource, a] : announcing_) {
    if (a.sent < kVipAnnounceAtMs.size())
      next = std::min(next, a.taken_ms + kVipAnnounceAtMs[a.sent]);
  }
  return next;
}

}  // namespace bulwark
