#include "daemon/node_changes.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace bulwark {

Status add_keeps_majority(const std::string& name, int members, int reachable, bool new_member) {
  const int after = members + (new_member ? 1 : 0);
  const int majority = after / 2 + 1;
  if (reachable >= majority) return Ok{};
  return make_error(Errc::kInvalid,
                    "adding " + name + " would make the majority " + std::to_string(majority) +
                        " of " + std::to_string(after) + " nodes while only " +
                        std::to_string(reachable) +
                        " are reachable; remove failed nodes first (bulwark node remove NAME)");
}

std::string exclusive_still_running(const NodeStatusRecord& status, const ResourceConfig* config) {
  std::string running;
  for (const auto& [res, is] : status.resources) {
    const ResourceSpec* spec = config ? config->find(res) : nullptr;
    const bool exclusive = is.promoted || is.state == InstanceState::kPromoted || !spec ||
                           spec->kind == ResourceKind::kSingleton;
    if (exclusive && is.state != InstanceState::kStopped)
      running += (running.empty() ? "" : ", ") + res;
  }
  return running;
}

Status retry_member_change(const Clock& clock, int64_t retry_ms,
                           const std::function<Status()>& change) {
  const int64_t deadline = clock.mono_ms() + retry_ms;
  while (true) {
    auto st = change();
    if (st || clock.mono_ms() >= deadline) return st;
    const Errc code = st.error().code;
    if (code != Errc::kUnavailable && code != Errc::kTimeout) return st;  // final
    clock.sleep_ms(300);
  }
}

Status ensure_etcd_member(EtcdClient& etcd, const std::string& name, const std::string& peer_url) {
  auto members = etcd.member_list();
  if (!members) return members.error();
  const bool present = std::any_of(members->begin(), members->end(), [&](const EtcdMember& m) {
    return std::find(m.peer_urls.begin(), m.peer_urls.end(), peer_url) != m.peer_urls.end();
  });
  if (present) return Ok{};
  auto added = etcd.member_add(peer_url);
  if (!added) return added.error();
  spdlog::info("api: added etcd member {} at {}", name, peer_url);
  return Ok{};
}

Status remove_etcd_member(EtcdClient& etcd, const std::string& name, const std::string& peer_url) {
  auto members = etcd.member_list();
  if (!members) return members.error();
  for (const auto& m : *members) {
    const bool match = m.name == name || std::find(m.peer_urls.begin(), m.peer_urls.end(),
                                                   peer_url) != m.peer_urls.end();
    if (!match) continue;
    if (auto removed = etcd.member_remove(m.id); !removed) return removed;
    spdlog::info("api: removed etcd member {}", name);
  }
  return Ok{};
}

}  // namespace bulwark
