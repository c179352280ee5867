#include "cli/status_view.h"

#include <sstream>

namespace bulwark {

using json = nlohmann::json;

namespace {
std::string str(const json& j, const char* key, const std::string& fallback = "-") {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (j[key].is_string()) return j[key].get<std::string>();
  return j[key].dump();
}

std::string pad(const std::string& s, std::size_t width) {
  return s.size() >= width ? s + " " : s + std::string(width - s.size(), ' ');
}
}  // namespace

std::string render_status(const json& s) {
  std::ostringstream out;
  const json lease = s.value("lease", json::object());
  const json etcd = s.value("etcd", json::object());
  const json store = s.value("store", json::object());
  out << "cluster:     " << str(s, "cluster") << "   (as seen by " << str(s, "node") << ")\n";
  out << "coordinator: " << str(s, "coordinator", "none") << " (epoch " << str(s, "epoch") << ")\n";
  const std::size_t reach = lease.value("reachable", json::array()).size() + 1;
  out << "quorum:      " << (s.value("quorate", false) ? "yes" : "NO") << " (" << reach << " of "
      << str(lease, "members") << " nodes reachable, majority " << str(lease, "majority")
      << ", lease " << str(lease, "remaining_ms") << " ms left)\n";
  out << "etcd:        " << (etcd.value("healthy", false) ? "healthy" : "UNHEALTHY") << " ("
      << str(etcd, "mode") << ", leader " << str(etcd, "leader", "none") << ", v"
      << str(etcd, "version") << ")";
  if (etcd.contains("error") && !etcd["error"].is_null())
    out << ": " << etcd["error"].get<std::string>();
  out << "\n";
  out << "store:       revision " << str(store, "revision") << ", "
      << (store.value("watching", false) ? "watching" : "NOT watching") << ", confirmed "
      << str(store, "confirmed_ago_ms") << " ms ago\n\n";
  out << pad("NODE", 10) << pad("ADDRESS", 18) << pad("STATE", 9) << pad("MODE", 13)
      << pad("CONTACT", 10) << "ATTRIBUTES\n";
  const json nodes = s.contains("nodes") ? s["nodes"] : json::array();
  for (const auto& n : nodes) {
    std::string name = str(n, "name");
    if (n.value("coordinator", false)) name += "*";
    // The daemon reports -1 for a member that never answered.
    const bool never = !n.contains("last_contact_ms") || !n["last_contact_ms"].is_number() ||
                       n["last_contact_ms"].get<double>() < 0;
    std::string contact =
        n.value("self", false) ? "self" : (never ? "never" : str(n, "last_contact_ms"));
    if (contact != "self" && contact != "never") contact += " ms";
    std::string attrs;
    if (n.contains("attributes") && n["attributes"].is_object()) {
      for (auto it = n["attributes"].begin(); it != n["attributes"].end(); ++it)
        attrs += (attrs.empty() ? "" : ",") + it.key() + "=" + it.value().get<std::string>();
    }
    out << pad(name, 10) << pad(str(n, "address"), 18)
        << pad(n.value("online", false) ? "online" : "OFFLINE", 9) << pad(str(n, "mode"), 13)
        << pad(contact, 10) << attrs << "\n";
  }
  out << "(* coordinator; contact = time since the newest answered heartbeat left)\n";
  return out.str();
}

}  // namespace bulwark

namespace bulwark {

std::string render_resources(const json& r) {
  std::ostringstream out;
  if (!r.value("applied", false)) return "no resources applied (bulwark apply FILE)\n";
  out << "resources from " << str(r, "source") << " (revision " << str(r, "revision") << ")";
  if (r.value("maintenance", false)) out << "   MAINTENANCE MODE: nothing is managed";
  out << "\n\n";
  out << pad("NAME", 16) << pad("KIND", 11) << pad("AGENT", 22) << pad("FAILS", 6)
      << "INSTANCES (node:state)   NOTE\n";
  for (const auto& res : r.value("resources", json::array())) {
    std::string instances;
    for (const auto& i : res.value("instances", json::array()))
      instances += (instances.empty() ? "" : " ") + str(i, "node") + ":" + str(i, "state") +
                   (i.value("node_online", true) ? "" : "(offline)") +
                   (i.value("outdated", false) ? "(outdated)" : "") +
                   (i.value("unmanaged", false) ? "(unmanaged)" : "");
    const json desired = res.value("desired", json::object());
    std::string note = str(desired, "reason", "");
    if (res.contains("moved_to"))
      note += (note.empty() ? "" : "; ") + ("moved to " + str(res, "moved_to"));
    if (res.contains("banned_from"))
      note += (note.empty() ? "" : "; ") + ("banned from " + res["banned_from"].dump());
    const auto add_note = [&note](const std::string& n) { note += (note.empty() ? "" : "; ") + n; };
    if (!res.value("enabled", true) && note.find("disabled") == std::string::npos)
      add_note(str(res, "disabled_by", "") == "operator" ? "disabled (bulwark resource enable)"
                                                         : "disabled");
    if (!res.value("managed", true) && !r.value("maintenance", false)) add_note("unmanaged");
    out << pad(str(res, "name"), 16) << pad(str(res, "kind"), 11) << pad(str(res, "agent"), 22)
        << pad(str(res, "fail_count"), 6) << pad(instances.empty() ? "-" : instances, 25) << note
        << "\n";
  }
  return out.str();
}

}  // namespace bulwark
