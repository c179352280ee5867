#include "store/etcd_client.h"

#include <httplib.h>
#include <openssl/evp.h>

#include <nlohmann/json.hpp>

#include "core/json_input.h"

namespace bulwark {
namespace {

using json = nlohmann::json;

std::string b64(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string unb64(const std::string& in) {
  if (in.empty()) return {};
  std::string out(3 * in.size() / 4 + 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  if (n < 0) return {};
  std::size_t len = static_cast<std::size_t>(n);
  if (in.size() >= 1 && in[in.size() - 1] == '=') --len;
  if (in.size() >= 2 && in[in.size() - 2] == '=') --len;
  out.resize(len);
  return out;
}

// The gateway renders 64-bit integers as strings; accept both.
int64_t i64(const json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return 0;
  if (it->is_string()) return std::stoll(it->get<std::string>());
  return it->get<int64_t>();
}

uint64_t u64(const json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return 0;
  if (it->is_string()) return std::stoull(it->get<std::string>());
  return it->get<uint64_t>();
}

KeyValue parse_kv(const json& j) {
  KeyValue kv;
  kv.key = unb64(j.value("key", ""));
  kv.value = unb64(j.value("value", ""));
  kv.create_revision = i64(j, "create_revision");
  kv.mod_revision = i64(j, "mod_revision");
  kv.version = i64(j, "version");
  return kv;
}

json op_json(const TxnOp& op) {
  if (op.kind == TxnOp::Kind::kPut)
    return {{"request_put", {{"key", b64(op.key)}, {"value", b64(op.value)}}}};
  json del = {{"key", b64(op.key)}};
  if (op.prefix) del["range_end"] = b64(prefix_end(op.key));
  return {{"request_delete_range", del}};
}

json compare_json(const Compare& c) {
  json j = {{"key", b64(c.key)}};
  static const char* kOps[] = {"EQUAL", "NOT_EQUAL", "LESS", "GREATER"};
  j["result"] = kOps[static_cast<int>(c.op)];
  switch (c.target) {
    case Compare::Target::kModRevision:
      j["target"] = "MOD";
      j["mod_revision"] = std::to_string(c.number);
      break;
    case Compare::Target::kCreateRevision:
      j["target"] = "CREATE";
      j["create_revision"] = std::to_string(c.number);
      break;
    case Compare::Target::kVersion:
      j["target"] = "VERSION";
      j["version"] = std::to_string(c.number);
      break;
    case Compare::Target::kValue:
      j["target"] = "VALUE";
      j["value"] = b64(c.value);
      break;
  }
  return j;
}

// etcd's error body: {"error": "...", "message": "...", "code": N}.
std::string etcd_message(const std::string& body) {
  const json j = parse_json_input(body);
  if (j.is_object()) {
    if (j.contains("message") && j["message"].is_string()) return j["message"];
    if (j.contains("error") && j["error"].is_string()) return j["error"];
  }
  return body.substr(0, 200);
}

// Read and write deadline of one request on `cli`.
void set_io_timeout(httplib::Client& cli, int timeout_ms) {
  const time_t sec = timeout_ms / 1000;
  const time_t usec = static_cast<time_t>(timeout_ms % 1000) * 1000;
  cli.set_read_timeout(sec, usec);
  cli.set_write_timeout(sec, usec);
}

// Error for etcd's refusal `body` (a non-200 answer) of `what`.
Error refusal(const std::string& what, const std::string& body) {
  const std::string m = etcd_message(body);
  return make_error(etcd_refusal_code(m), what + ": " + m);
}

bool request_never_left(httplib::Error e) {
  return e == httplib::Error::Connection || e == httplib::Error::SSLConnection ||
         e == httplib::Error::ConnectionTimeout || e == httplib::Error::SSLLoadingCerts ||
         e == httplib::Error::SSLServerVerification;
}

}  // namespace

Errc etcd_refusal_code(const std::string& message) {
  const auto says = [&](const char* words) { return message.find(words) != std::string::npos; };
  if (says("no leader") || says("not leader") || says("not capable") || says("server stopped") ||
      says("unhealthy cluster") || says("not enough started members") || says("too many requests"))
    return Errc::kUnavailable;
  if (says("timed out") || says("leader changed")) return Errc::kTimeout;
  return Errc::kInvalid;
}

std::string prefix_end(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    auto& c = end.back();
    if (static_cast<unsigned char>(c) < 0xff) {
      ++c;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

namespace {
// Idle connections kept per endpoint; more concurrent requests than this just
// open (and then close) extra connections.
constexpr std::size_t kIdleConnectionsMax = 4;
// An endpoint that failed this recently is tried after the others.
constexpr int64_t kFailurePenaltyMs = 1000;
// A watch stream silent this long is re-established (embedded members send
// progress notifications every 5 s).
constexpr time_t kWatchIdleSec = 12;
}  // namespace

EtcdClient::EtcdClient(EtcdClientOptions options) : options_(std::move(options)) {}

EtcdClient::~EtcdClient() = default;

std::vector<std::string> EtcdClient::endpoints() {
  std::lock_guard lock(mu_);
  return options_.endpoints;
}

void EtcdClient::set_endpoints(std::vector<std::string> endpoints) {
  std::lock_guard lock(mu_);
  options_.endpoints = std::move(endpoints);
}

std::vector<std::string> EtcdClient::attempt_order() {
  std::lock_guard lock(mu_);
  const int64_t now = options_.clock->mono_ms();
  std::vector<std::string> fresh, penalised, unreachable;
  for (const auto& ep : options_.endpoints) {
    const auto it = failed_at_ms_.find(ep);
    const bool recent = it != failed_at_ms_.end() && now - it->second < kFailurePenaltyMs;
    (unreachable_.count(ep) ? unreachable : recent ? penalised : fresh).push_back(ep);
  }
  fresh.insert(fresh.end(), penalised.begin(), penalised.end());
  fresh.insert(fresh.end(), unreachable.begin(), unreachable.end());
  return fresh;
}

bool EtcdClient::set_unreachable(const std::set<std::string>& endpoints) {
  {
    std::lock_guard lock(mu_);
    if (endpoints == unreachable_) return false;
    for (const auto& ep : endpoints) idle_.erase(ep);
    unreachable_ = endpoints;
  }
  std::lock_guard lock(watch_mu_);
  if (!watch_client_ || !endpoints.count(watch_endpoint_)) return false;
  watch_client_->stop();
  return true;
}

void EtcdClient::mark_failed(const std::string& endpoint, bool unreachable) {
  std::lock_guard lock(mu_);
  failed_at_ms_[endpoint] = options_.clock->mono_ms();
  // A member that refused the connection has restarted or died: its
  // kept-alive connections are dead too. A member that was merely slow (in
  // an election) keeps them: a new TLS handshake would only add load.
  if (unreachable) idle_.erase(endpoint);
}

std::unique_ptr<httplib::Client> EtcdClient::acquire(const std::string& endpoint, int timeout_ms) {
  std::unique_ptr<httplib::Client> cli;
  {
    std::lock_guard lock(mu_);
    auto& pool = idle_[endpoint];
    if (!pool.empty()) {
      cli = std::move(pool.back());
      pool.pop_back();
    }
  }
  if (!cli) cli = connect(endpoint, timeout_ms);
  // A pooled connection keeps whatever deadline its last request had.
  set_io_timeout(*cli, timeout_ms);
  return cli;
}

void EtcdClient::release(const std::string& endpoint, std::unique_ptr<httplib::Client> client) {
  std::lock_guard lock(mu_);
  auto& pool = idle_[endpoint];
  if (pool.size() < kIdleConnectionsMax) pool.push_back(std::move(client));
}

std::unique_ptr<httplib::Client> EtcdClient::connect(const std::string& endpoint,
                                                     int timeout_ms) const {
  auto cli = std::make_unique<httplib::Client>(endpoint, options_.cert_file, options_.key_file);
  cli->set_ca_cert_path(options_.ca_file);
  cli->enable_server_certificate_verification(true);
  // Connecting (TCP and TLS handshake) gets the full request timeout, even
  // for short requests: a member busy with an election is slow to shake
  // hands, and giving up mid-handshake only makes the next attempt pay again.
  const int connect_ms = std::max(timeout_ms, options_.request_timeout_ms);
  cli->set_connection_timeout(connect_ms / 1000, static_cast<time_t>(connect_ms % 1000) * 1000);
  set_io_timeout(*cli, timeout_ms);
  cli->set_keep_alive(true);
  cli->set_tcp_nodelay(true);
  return cli;
}

Result<EtcdClient::Reply> EtcdClient::post(const std::string& path, const std::string& body,
                                           bool retry_elsewhere, int timeout_ms) {
  if (timeout_ms <= 0) timeout_ms = options_.request_timeout_ms;
  const std::vector<std::string> order = attempt_order();
  if (order.empty()) return make_error(Errc::kUnavailable, "no etcd endpoints");
  std::string failures;
  const httplib::Headers headers = {{"Grpc-Metadata-hasleader", "true"}};
  for (const auto& ep : order) {
    auto cli = acquire(ep, timeout_ms);
    auto res = cli->Post(path, headers, body, "application/json");
    if (!res && res.error() == httplib::Error::Write) {
      // A kept-alive connection the server had closed: nothing was sent.
      cli = connect(ep, timeout_ms);
      res = cli->Post(path, headers, body, "application/json");
    }
    if (res) {
      Reply reply{res->status, res->body};
      release(ep, std::move(cli));
      // A member without a leader refuses before applying anything: another
      // member may well have one.
      if (reply.status != 200 &&
          etcd_refusal_code(etcd_message(reply.body)) == Errc::kUnavailable) {
        failures += (failures.empty() ? "" : "; ") + ep + ": " + etcd_message(reply.body);
        mark_failed(ep, false);
        continue;
      }
      return reply;
    }
    const auto err = res.error();
    failures += (failures.empty() ? "" : "; ") + ep + ": " + httplib::to_string(err);
    mark_failed(ep, request_never_left(err));
    if (!request_never_left(err) && !retry_elsewhere) {
      return make_error(Errc::kTimeout, "etcd request " + path + " failed after it was sent (" +
                                            failures + "); its outcome is unknown");
    }
  }
  return make_error(Errc::kUnavailable, "etcd unavailable: " + failures);
}

Result<RangeResult> EtcdClient::get(const std::string& key, bool prefix, int timeout_ms) {
  json req = {{"key", b64(key)}};
  if (prefix) req["range_end"] = b64(prefix_end(key));
  auto reply = post("/v3/kv/range", req.dump(), /*retry_elsewhere=*/true, timeout_ms);
  if (!reply) return reply.error();
  if (reply->status != 200) return refusal("etcd range refused", reply->body);
  const json j = parse_json_input(reply->body);
  if (!j.is_object()) return make_error(Errc::kUnavailable, "etcd sent malformed JSON");
  RangeResult r;
  r.revision = i64(j.value("header", json::object()), "revision");
  for (const auto& kv : j.value("kvs", json::array())) r.kvs.push_back(parse_kv(kv));
  return r;
}

Result<TxnResult> EtcdClient::txn(const std::vector<Compare>& compares,
                                  const std::vector<TxnOp>& success,
                                  const std::vector<TxnOp>& failure, int timeout_ms) {
  json req = {{"compare", json::array()}, {"success", json::array()}, {"failure", json::array()}};
  for (const auto& c : compares) req["compare"].push_back(compare_json(c));
  for (const auto& op : success) req["success"].push_back(op_json(op));
  for (const auto& op : failure) req["failure"].push_back(op_json(op));
  auto reply = post("/v3/kv/txn", req.dump(), /*retry_elsewhere=*/false, timeout_ms);
  if (!reply) return reply.error();
  if (reply->status != 200) {
    Error e = refusal("etcd transaction refused", reply->body);
    if (e.code == Errc::kTimeout) e.message += "; its outcome is unknown";
    return e;
  }
  const json j = parse_json_input(reply->body);
  if (!j.is_object()) return make_error(Errc::kUnavailable, "etcd sent malformed JSON");
  TxnResult r;
  r.succeeded = j.value("succeeded", false);
  r.revision = i64(j.value("header", json::object()), "revision");
  return r;
}

Result<std::vector<EtcdMember>> EtcdClient::member_list() {
  auto reply = post("/v3/cluster/member/list", "{}", true);
  if (!reply) return reply.error();
  if (reply->status != 200) return refusal("etcd member list refused", reply->body);
  const json j = parse_json_input(reply->body);
  if (!j.is_object()) return make_error(Errc::kUnavailable, "etcd sent malformed JSON");
  std::vector<EtcdMember> out;
  for (const auto& m : j.value("members", json::array())) {
    EtcdMember em;
    em.id = u64(m, "ID");
    em.name = m.value("name", "");
    em.peer_urls = m.value("peerURLs", std::vector<std::string>{});
    em.client_urls = m.value("clientURLs", std::vector<std::string>{});
    out.push_back(std::move(em));
  }
  return out;
}

Result<EtcdMember> EtcdClient::member_add(const std::string& peer_url) {
  const json req = {{"peerURLs", {peer_url}}};
  auto reply = post("/v3/cluster/member/add", req.dump(), false);
  if (!reply) return reply.error();
  if (reply->status != 200) return refusal("etcd refused to add member " + peer_url, reply->body);
  const json j = parse_json_input(reply->body);
  if (!j.is_object() || !j.contains("member"))
    return make_error(Errc::kUnavailable, "etcd sent malformed JSON");
  EtcdMember em;
  em.id = u64(j["member"], "ID");
  em.peer_urls = j["member"].value("peerURLs", std::vector<std::string>{});
  return em;
}

Status EtcdClient::member_remove(uint64_t id) {
  const json req = {{"ID", std::to_string(id)}};
  auto reply = post("/v3/cluster/member/remove", req.dump(), false);
  if (!reply) return reply.error();
  if (reply->status != 200) return refusal("etcd refused to remove member", reply->body);
  return Ok{};
}

Status EtcdClient::compact(int64_t revision) {
  const json req = {{"revision", std::to_string(revision)}, {"physical", true}};
  auto reply = post("/v3/kv/compaction", req.dump(), true);
  if (!reply) return reply.error();
  if (reply->status != 200) return refusal("etcd compaction refused", reply->body);
  return Ok{};
}

Result<EtcdStatus> EtcdClient::status(const std::string& endpoint) {
  auto cli = acquire(endpoint, std::min(options_.request_timeout_ms, 1000));
  auto res = cli->Post("/v3/maintenance/status", "{}", "application/json");
  if (!res)
    return make_error(Errc::kUnavailable, endpoint + ": " + httplib::to_string(res.error()));
  release(endpoint, std::move(cli));
  if (res->status != 200)
    return make_error(Errc::kUnavailable, endpoint + ": " + etcd_message(res->body));
  const json j = parse_json_input(res->body);
  if (!j.is_object()) return make_error(Errc::kUnavailable, "etcd sent malformed JSON");
  EtcdStatus s;
  s.endpoint = endpoint;
  s.version = j.value("version", "");
  s.leader = u64(j, "leader");
  s.raft_term = i64(j, "raftTerm");
  s.db_size = i64(j, "dbSize");
  const json header = j.value("header", json::object());
  s.member_id = u64(header, "member_id");
  s.revision = i64(header, "revision");
  return s;
}

void EtcdClient::cancel_watch(bool stale) {
  std::string endpoint;
  {
    std::lock_guard lock(watch_mu_);
    if (watch_client_) watch_client_->stop();
    endpoint = watch_endpoint_;
  }
  if (stale && !endpoint.empty()) mark_failed(endpoint, false);
}

bool EtcdClient::rehome_watch() {
  const std::vector<std::string> all = endpoints();
  std::lock_guard lock(watch_mu_);
  if (!watch_client_ || all.empty() || watch_endpoint_ == all.front()) return false;
  {
    // The first endpoint may still be penalised for an old failure: it is
    // healthy now, so the next watch goes there.
    std::lock_guard failed(mu_);
    failed_at_ms_.erase(all.front());
  }
  watch_client_->stop();
  return true;
}

Status EtcdClient::watch(
    const std::string& prefix, int64_t start_revision,
    const std::function<void(const std::vector<WatchEvent>&, int64_t)>& on_events,
    const std::atomic<bool>& stop) {
  const std::vector<std::string> order = attempt_order();
  if (order.empty()) return make_error(Errc::kUnavailable, "no etcd endpoints");
  const std::string& endpoint = order.front();
  // The watch asks for progress notifications (every few seconds from the
  // embedded members); a stream silent for longer than the read deadline
  // ends, and the caller re-watches from its revision at once.
  auto cli = connect(endpoint, options_.request_timeout_ms);
  cli->set_read_timeout(kWatchIdleSec, 0);
  {
    std::lock_guard lock(watch_mu_);
    watch_client_ = cli.get();
    watch_endpoint_ = endpoint;
  }
  struct Unregister {
    EtcdClient* self;
    ~Unregister() {
      std::lock_guard lock(self->watch_mu_);
      self->watch_client_ = nullptr;
    }
  } unregister{this};
  if (stop) return Ok{};

  const json create = {{"create_request",
                        {{"key", b64(prefix)},
                         {"range_end", b64(prefix_end(prefix))},
                         {"start_revision", std::to_string(start_revision)},
                         {"progress_notify", true}}}};
  std::string buffer;
  Status outcome = Ok{};
  bool done = false;
  bool created = false;
  httplib::Request req;
  req.method = "POST";
  req.path = "/v3/watch";
  req.headers = {{"Grpc-Metadata-hasleader", "true"}, {"Content-Type", "application/json"}};
  req.body = create.dump();
  req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
    buffer.append(data, len);
    std::size_t nl;
    while ((nl = buffer.find('\n')) != std::string::npos) {
      const std::string line = buffer.substr(0, nl);
      buffer.erase(0, nl + 1);
      const json j = parse_json_input(line);
      if (!j.is_object()) continue;
      if (j.contains("error")) {
        outcome = make_error(Errc::kUnavailable, "watch failed: " + etcd_message(line));
        done = true;
        return false;
      }
      const json r = j.value("result", json::object());
      if (i64(r, "compact_revision") > 0) {
        outcome = make_error(Errc::kConflict, "watch revision compacted at " +
                                                  std::to_string(i64(r, "compact_revision")));
        done = true;
        return false;
      }
      if (r.value("canceled", false)) {
        outcome = make_error(Errc::kUnavailable, "watch canceled by etcd: " +
                                                     r.value("cancel_reason", std::string("")));
        done = true;
        return false;
      }
      const int64_t rev = i64(r.value("header", json::object()), "revision");
      if (r.value("created", false)) {
        // The creation header carries the current revision, not a promise
        // that older events were sent: they follow.
        created = true;
        continue;
      }
      std::vector<WatchEvent> events;
      for (const auto& e : r.value("events", json::array())) {
        WatchEvent ev;
        ev.deleted = e.value("type", "PUT") == "DELETE";
        ev.kv = parse_kv(e.value("kv", json::object()));
        events.push_back(std::move(ev));
      }
      // Events, or a progress notification (no events): either way every
      // change up to `rev` has been delivered.
      on_events(events, rev);
    }
    return !stop.load();
  };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  cli->send(req, res, err);
  if (done) {
    // A member that cancels watches (no leader) is no good to watch from
    // for now: the next attempt prefers another one.
    if (outcome.error().code == Errc::kUnavailable) mark_failed(endpoint, false);
    return outcome;
  }
  if (stop) return Ok{};
  // An established stream that merely went quiet is a normal end.
  if (created && err == httplib::Error::Read) return Ok{};
  if (request_never_left(err)) mark_failed(endpoint, true);
  return make_error(Errc::kUnavailable,
                    "watch stream on " + endpoint + " ended: " + httplib::to_string(err));
}

}  // namespace bulwark
