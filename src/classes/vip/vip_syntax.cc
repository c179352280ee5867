#include "classes/vip/vip_syntax.h"

#include <arpa/inet.h>

#include <algorithm>
#include <set>

namespace bulwark {
namespace {

// A vip's params: the address must be one a host can hold, and the
// interface is required unless the address is a loopback one.
Status parse_vip(const YamlSection& s, AgentSpec& a) {
  const YAML::Node params = s["params"];
  const auto at = [&](const char* key) { return params && params[key] ? params[key] : s.node(); };
  VipSpec& v = a.vip;
  for (const auto& [key, value] : a.params) {
    static const std::set<std::string> kKnown = {"address", "prefix", "interface", "label",
                                                 "conflict_probe_ms"};
    if (!kKnown.count(key))
      return s.error(at(key.c_str()), "vip has no parameter '" + key +
                                          "' (it takes: address, conflict_probe_ms, interface, "
                                          "label, prefix)");
  }
  const auto param = [&](const char* key) {
    auto it = a.params.find(key);
    return it == a.params.end() ? std::string() : it->second;
  };
  v.address = param("address");
  if (v.address.empty()) return s.error(at("address"), "vip needs parameter 'address'");
  in6_addr buf{};
  if (::inet_pton(AF_INET, v.address.c_str(), &buf) == 1) {
    const uint8_t first = reinterpret_cast<const uint8_t*>(&buf)[0];
    if (first == 0 || first >= 224)
      return s.error(at("address"), "vip address " + v.address + " cannot be held by a host");
    v.loopback = first == 127;
  } else if (::inet_pton(AF_INET6, v.address.c_str(), &buf) == 1) {
    v.ipv6 = true;
    v.prefix = 128;
    if (IN6_IS_ADDR_UNSPECIFIED(&buf) || IN6_IS_ADDR_MULTICAST(&buf) || IN6_IS_ADDR_LOOPBACK(&buf))
      return s.error(at("address"), "vip address " + v.address + " cannot be held by a host");
  } else {
    return s.error(at("address"), "vip address '" + v.address + "' is not an IP address");
  }
  const auto number = [&](const char* key, int& out, int min, int max) -> Status {
    const std::string text = param(key);
    if (text.empty()) return Ok{};
    const bool digits =
        std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits || text.size() > 6 || std::stoi(text) < min || std::stoi(text) > max)
      return s.error(at(key), std::string("vip ") + key + " must be an integer from " +
                                  std::to_string(min) + " to " + std::to_string(max));
    out = std::stoi(text);
    return Ok{};
  };
  if (auto st = number("prefix", v.prefix, 1, v.ipv6 ? 128 : 32); !st) return st;
  if (auto st = number("conflict_probe_ms", v.conflict_probe_ms, 0, 10000); !st) return st;
  v.interface = param("interface");
  v.label = param("label");
  if (v.loopback) {
    if (!v.interface.empty() && v.interface != "lo")
      return s.error(at("interface"),
                     "a loopback vip (127.0.0.0/8) lives on lo, not " + v.interface);
    v.interface.clear();
    if (!v.label.empty()) return s.error(at("label"), "a loopback vip takes no label");
    return Ok{};
  }
  if (v.interface.empty()) return s.error(at("interface"), "vip needs parameter 'interface'");
  if (v.interface.size() > 15 || v.interface.find_first_of("/: ") != std::string::npos)
    return s.error(at("interface"), "'" + v.interface + "' is not an interface name");
  if (!v.label.empty()) {
    if (v.ipv6) return s.error(at("label"), "labels are for IPv4 addresses only");
    const bool ok = v.label.size() <= 15 &&
                    (v.label == v.interface || v.label.rfind(v.interface + ":", 0) == 0);
    if (!ok)
      return s.error(at("label"), "label '" + v.label + "' must be '" + v.interface + "' or '" +
                                      v.interface + ":SUFFIX', at most 15 characters");
  }
  return Ok{};
}

}  // namespace

// A vip is a singleton held by one node at a time, its params typed into
// AgentSpec::vip, its monitor one netlink call: often, by default.
AgentClassSyntax vip_syntax() {
  AgentClassSyntax c;
  c.agent_class = AgentClass::kVip;
  c.name = "vip";
  c.agent = "vip";
  c.agent_form = "vip";
  c.monitor.interval_ms = 1000;
  c.monitor.timeout_ms = 1000;
  c.parse = [](const YamlSection& s, const std::string&, ResourceSpec& r) -> Status {
    if (r.kind != ResourceKind::kSingleton)
      return s.error(s[r.kind == ResourceKind::kClone ? "clone" : "promotable"],
                     "a vip is a singleton: one node holds the address at a time");
    return parse_vip(s, r.agent);
  };
  return c;
}

}  // namespace bulwark
