#include "classes/proxy/proxy_syntax.h"

#include "proxy/proxy_config.h"

namespace bulwark {

// A proxy resource is bulwark-proxy with its configuration in the
// resource's `proxy` section, checked by bulwark-proxy's own parser where it
// stands in the file; its backends may take their servers from where
// another resource of the file runs (servers_from).
AgentClassSyntax proxy_syntax() {
  AgentClassSyntax c;
  c.agent_class = AgentClass::kProxy;
  c.name = "proxy";
  c.agent = "proxy";
  c.agent_form = "proxy";
  c.keywords = {{"resources[]", "proxy", "mapping", "(required for proxy)",
                 "proxy: bulwark-proxy's configuration (global, frontends, backends)"}};
  c.parse = [](const YamlSection& s, const std::string&, ResourceSpec& r) -> Status {
    AgentSpec& a = r.agent;
    const YAML::Node proxy = s["proxy"];
    if (!proxy) return s.error(s.node(), "agent proxy needs a proxy section (its configuration)");
    if (!proxy.IsMap())
      return s.error(proxy, "proxy must be a mapping (global, frontends, backends)");
    if (!a.params.empty()) return s.error(s["params"], "agent proxy takes no params");
    a.proxy = YAML::Dump(proxy);
    if (const YAML::Node backends = proxy["backends"]; backends && backends.IsSequence()) {
      for (const auto& b : backends) {
        const YAML::Node from = b.IsMap() ? b["servers_from"] : YAML::Node();
        if (from && from.IsMap() && from["resource"] && from["resource"].IsScalar())
          a.proxy_sources.push_back(from["resource"].Scalar());
      }
    }
    return Ok{};
  };
  // The section itself is bulwark-proxy's configuration, checked by its
  // own parser where it stands in the file.
  c.check_at_apply = [](const YamlSection& s, const ResourceSpec&) -> Status {
    return proxy::check_cluster_proxy_section(s["proxy"], s.path());
  };
  // A proxy's servers come from a resource of the file that runs a
  // service (not a vip, not a proxy), checked at the servers_from naming it.
  c.check_in_file = [](const YamlSection& s, const ResourceSpec&,
                       const ResourceConfig& config) -> Status {
    const YAML::Node backends = s["proxy"]["backends"];
    for (std::size_t k = 0; backends && backends.IsSequence() && k < backends.size(); ++k) {
      const YAML::Node from = backends[k].IsMap() ? backends[k]["servers_from"] : YAML::Node();
      const YAML::Node at = from && from.IsMap() ? from["resource"] : YAML::Node();
      if (!at || !at.IsScalar()) continue;
      const ResourceSpec* source = config.find(at.Scalar());
      if (!source) return s.error(at, "no resource named '" + at.Scalar() + "'");
      const AgentClass source_class = source->agent.agent_class;
      if (source_class == AgentClass::kVip || source_class == AgentClass::kProxy)
        return s.error(at, std::string("servers come from a service, not from ") +
                               (source_class == AgentClass::kVip ? "a vip" : "a proxy"));
    }
    return Ok{};
  };
  return c;
}

}  // namespace bulwark
