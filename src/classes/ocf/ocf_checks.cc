#include "classes/ocf/ocf_checks.h"

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>
#include <vector>

#include "sys/process.h"

namespace bulwark {
namespace {

// An agent's meta-data is static text; a slower answer is a broken agent.
constexpr int kMetaDataTimeoutMs = 5000;

}  // namespace

Status OcfChecker::check(const ResourceSpec& r, const std::string& what) {
  const std::string script = ocf_root_ + "/resource.d/" + r.agent.provider + "/" + r.agent.type;
  if (::access(script.c_str(), X_OK) != 0)
    return make_error(Errc::kInvalid, what + " is not installed (no " + script + " on this node)");
  // The agent's own meta-data says which parameters it takes: a typo in a
  // parameter name, or a missing required one, fails here, not at start.
  auto it = described_.find(script);
  if (it == described_.end()) it = described_.emplace(script, describe(script)).first;
  if (!it->second) return make_error(Errc::kInvalid, what + ": " + it->second.error().message);
  const OcfAgentInfo& known = *it->second;
  if (!known.reload.action.empty()) reload_[agent_name(r.agent)] = known.reload;
  for (const auto& [k, v] : r.agent.params) {
    if (!known.all.count(k)) {
      std::string list;
      for (const auto& p : known.all) list += (list.empty() ? "" : ", ") + p;
      return make_error(Errc::kInvalid, what + " has no parameter '" + k +
                                            "' (it takes: " + (list.empty() ? "none" : list) + ")");
    }
  }
  for (const auto& k : known.required) {
    if (!r.agent.params.count(k))
      return make_error(Errc::kInvalid, what + " needs parameter '" + k + "'");
  }
  // What a promotable asks of the agent, the agent must offer.
  if (r.kind == ResourceKind::kPromotable) {
    for (const char* action : {"promote", "demote"}) {
      if (!known.actions.count(action))
        return make_error(Errc::kInvalid, what + " has no " + action +
                                              " action in its meta-data (promotable needs it)");
    }
  }
  if (r.notify && !known.actions.count("notify"))
    notes_.push_back(what +
                     " declares no notify action in its meta-data: it is called anyway, "
                     "as Pacemaker does, and a failed notify is logged");
  if (auto st = validate_all(script, r); !st)
    return make_error(Errc::kInvalid, what + ": " + st.error().message);
  return Ok{};
}

Result<OcfAgentInfo> OcfChecker::describe(const std::string& script) const {
  SpawnOptions o;
  o.argv = {script, "meta-data"};
  o.env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "OCF_ROOT=" + ocf_root_,
           "OCF_FUNCTIONS_DIR=" + ocf_root_ + "/lib/heartbeat"};
  auto out = run_command(o, kMetaDataTimeoutMs);
  if (!out) return make_error(Errc::kInvalid, "meta-data: " + out.error().message);
  if (!WIFEXITED(out->wait_status) || WEXITSTATUS(out->wait_status) != 0)
    return make_error(Errc::kInvalid,
                      "meta-data failed (" + describe_wait_status(out->wait_status) + ")");
  // <parameter name="ip" unique="1" required="1"> and <action name="notify"
  // timeout="5s"/> elements, read without an XML library: the attributes
  // Bulwark needs are plain name="value" pairs.
  OcfAgentInfo p;
  const std::string& x = out->output;
  const auto each_tag = [&x](const std::string& element, const auto& fn) {
    for (std::size_t pos = 0; (pos = x.find("<" + element + " ", pos)) != std::string::npos;) {
      const std::size_t end = x.find('>', pos);
      if (end == std::string::npos) break;
      const std::string tag = x.substr(pos, end - pos);
      pos = end;
      fn([&tag](const std::string& name) -> std::string {
        const std::string key = " " + name + "=\"";
        const auto a = tag.find(key);
        if (a == std::string::npos) return "";
        const auto b = tag.find('"', a + key.size());
        return b == std::string::npos ? "" : tag.substr(a + key.size(), b - a - key.size());
      });
    }
  };
  std::set<std::string> reloadable;  // reloadable="1" (OCF 1.1)
  std::set<std::string> not_unique;  // unique="1" absent (the legacy rule)
  each_tag("parameter", [&](const auto& attr) {
    const std::string name = attr("name");
    if (name.empty()) return;
    p.all.insert(name);
    if (attr("required") == "1") p.required.insert(name);
    if (attr("reloadable") == "1") reloadable.insert(name);
    if (attr("unique") != "1") not_unique.insert(name);
  });
  each_tag("action", [&p](const auto& attr) {
    if (const std::string name = attr("name"); !name.empty()) p.actions.insert(name);
  });
  // Pacemaker's rule: reload-agent for the parameters marked reloadable;
  // without it, a legacy reload action for every parameter not unique.
  if (p.actions.count("reload-agent")) {
    p.reload = ReloadTraits{"reload-agent", reloadable};
  } else if (p.actions.count("reload")) {
    p.reload = ReloadTraits{"reload", not_unique};
  }
  return p;
}

Status OcfChecker::validate_all(const std::string& script, const ResourceSpec& r) const {
  // The agent's own check of its parameters. Only OCF_ERR_CONFIGURED (6),
  // "invalid everywhere", refuses the file: OCF_ERR_ARGS (2) and
  // OCF_ERR_INSTALLED (5) may hold on this node alone (a missing interface,
  // a missing binary), not on the nodes that will run it.
  constexpr int kOcfErrConfigured = 6;
  char dir[] = "/tmp/bulwark-validate-XXXXXX";
  if (::mkdtemp(dir) == nullptr) return Ok{};  // no check rather than a false refusal
  SpawnOptions o;
  o.argv = {script, "validate-all"};
  o.env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
           "LANG=C.UTF-8",
           "OCF_ROOT=" + ocf_root_,
           "OCF_FUNCTIONS_DIR=" + ocf_root_ + "/lib/heartbeat",
           "OCF_RESOURCE_INSTANCE=" + r.name,
           std::string("HA_RSCTMP=") + dir};
  // The params as this node would run them: ${BULWARK_...} expanded, the
  // variables exported, as at a start.
  const InstanceVars here = InstanceVars::of(node_, node_address_, r.name);
  for (auto& v : vars_environment(here)) o.env.push_back(std::move(v));
  for (const auto& [k, v] : r.agent.params)
    o.env.push_back("OCF_RESKEY_" + k + "=" + expand_vars(v, here));
  auto out = run_command(o, kMetaDataTimeoutMs);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (!out || !WIFEXITED(out->wait_status) || WEXITSTATUS(out->wait_status) != kOcfErrConfigured)
    return Ok{};
  // What the agent said, on one line (its ERROR lines and exit reason).
  std::string reason;
  std::istringstream lines(out->output);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    reason += (reason.empty() ? "" : "; ") + line;
  }
  if (reason.size() > 300) reason = reason.substr(0, 300) + "...";
  return make_error(Errc::kInvalid, "validate-all says the configuration is invalid (OCF exit 6)" +
                                        (reason.empty() ? std::string() : ": " + reason));
}

}  // namespace bulwark
