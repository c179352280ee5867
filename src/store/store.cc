#include "store/store.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "security/crypto.h"

namespace bulwark {
namespace {
// Bound on read-modify-write retries when other writers keep winning.
constexpr int kWriteAttemptsMax = 8;
// How long an operator write keeps retrying while etcd is briefly unable to
// answer (a leader election, a member restarting).
constexpr int64_t kTransientRetryMs = 5000;
}  // namespace

template <class T>
Result<T> Store::retry_transient(const std::function<Result<T>(bool after_unknown)>& attempt) {
  const int64_t deadline = clock_.mono_ms() + kTransientRetryMs;
  int64_t backoff_ms = 25;
  bool after_unknown = false;
  while (true) {
    Result<T> r = attempt(after_unknown);
    // Retried: requests refused or never delivered (kUnavailable), and
    // requests whose outcome is unknown (kTimeout: sent while etcd elected a
    // leader). Each attempt re-reads and compares revisions, and is told
    // that an earlier attempt may have committed, so a retry never applies
    // a change twice nor reports a committed one as failed.
    const bool transient =
        !r && (r.error().code == Errc::kUnavailable || r.error().code == Errc::kTimeout);
    if (!transient || clock_.mono_ms() >= deadline) return r;
    after_unknown = after_unknown || r.error().code == Errc::kTimeout;
    clock_.sleep_ms(backoff_ms);
    backoff_ms = std::min<int64_t>(backoff_ms * 2, 400);
  }
}

Result<Registration> read_registration(EtcdClient& etcd, const Schema& schema,
                                       const std::string& node) {
  auto initialised = etcd.get(schema.schema_key());
  if (!initialised) return initialised.error();
  Registration out;
  out.initialised = !initialised->kvs.empty();
  auto rec = etcd.get(schema.node_key(node));
  if (!rec) return rec.error();
  if (!rec->kvs.empty()) {
    auto n = Schema::decode_node(rec->kvs[0].value);
    if (!n) return n.error();
    out.node = std::move(*n);
  }
  return out;
}

Store::Store(const Clock& clock, EtcdClient& etcd, Schema schema, const AgentClassSyntaxes& classes,
             std::string cluster_name, int coordinator_timeout_ms)
    : clock_(clock),
      etcd_(etcd),
      schema_(std::move(schema)),
      classes_(classes),
      coordinator_timeout_ms_(coordinator_timeout_ms),
      writes_(clock, etcd, schema_, std::move(cluster_name), coordinator_timeout_ms) {}

Store::~Store() { stop(); }

void Store::start() {
  thread_ = std::thread([this] { run_watch(); });
}

void Store::stop() {
  stop_ = true;
  etcd_.cancel_watch();
  if (thread_.joinable()) thread_.join();
}

ClusterState Store::state() const {
  std::lock_guard lock(mu_);
  if (!decoded_) {
    decoded_ = schema_.build_state(kvs_, revision_);
    decoded_->loaded = loaded_;
    if (const auto& r = decoded_->resources) {
      if (r->mod_revision != parsed_resources_revision_) {
        auto parsed = parse_resource_config(r->text, r->source.empty() ? "resources" : r->source,
                                            classes_, ResourceFileUse::kApplied);
        parsed_resources_ = parsed ? with_reload_traits(std::move(*parsed), *r) : nullptr;
        parsed_resources_revision_ = r->mod_revision;
        if (!parsed)
          spdlog::error("store: the applied resources do not parse: {}", parsed.error().message);
      }
      decoded_->resource_config = parsed_resources_;
      if (!parsed_resources_)
        decoded_->errors.push_back(schema_.resources_key() + ": does not parse");
    }
  }
  return *decoded_;
}

CacheInfo Store::cache_info() const {
  std::lock_guard lock(mu_);
  CacheInfo c;
  c.loaded = loaded_;
  c.watching = watching_;
  c.revision = revision_;
  c.confirmed_ago_ms = confirmed_mono_ms_ < 0 ? -1 : clock_.mono_ms() - confirmed_mono_ms_;
  c.reloads = reloads_;
  c.last_error = last_error_;
  return c;
}

bool Store::wait_for_revision(int64_t revision, int timeout_ms) {
  std::unique_lock lock(mu_);
  return revision_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                               [&] { return revision_ >= revision; });
}

Result<int64_t> Store::confirm_fresh() {
  const int64_t asked = clock_.mono_ms();
  auto r = etcd_.get(schema_.schema_key());
  if (!r) return r.error();
  // The cache is current as of `asked` once it has applied the revision the
  // linearizable read saw; the watch delivers it within moments.
  if (wait_for_revision(r->revision, 1000)) {
    std::lock_guard lock(mu_);
    confirmed_mono_ms_ = std::max(confirmed_mono_ms_, asked);
  } else {
    // etcd has a revision the watch did not deliver within a second: the
    // member it streams from stopped (paused, cut off, behind). Re-establish
    // it on another member rather than serve a stale view.
    spdlog::warn("store: cache at revision {} while etcd is at {}; re-establishing the watch",
                 cache_info().revision, r->revision);
    etcd_.cancel_watch(/*stale=*/true);
  }
  return r->revision;
}

void Store::prefer_first_endpoint() {
  if (etcd_.rehome_watch()) spdlog::info("store: watching this node's own etcd member again");
}

Status Store::reload() {
  auto r = etcd_.get(schema_.root(), /*prefix=*/true);
  if (!r) return r.error();
  std::lock_guard lock(mu_);
  kvs_.clear();
  for (auto& kv : r->kvs) kvs_[kv.key] = std::move(kv);
  revision_ = r->revision;
  loaded_ = true;
  decoded_.reset();
  ++reloads_;
  revision_cv_.notify_all();
  return Ok{};
}

void Store::apply(const std::vector<WatchEvent>& events, int64_t revision) {
  std::lock_guard lock(mu_);
  if (events.empty() && revision <= revision_) return;  // progress notification, nothing new
  for (const auto& e : events) {
    if (e.deleted) {
      kvs_.erase(e.kv.key);
    } else {
      kvs_[e.kv.key] = e.kv;
    }
  }
  revision_ = std::max(revision_, revision);
  decoded_.reset();
  revision_cv_.notify_all();
}

void Store::run_watch() {
  int64_t backoff_ms = 50;
  bool need_reload = true;
  while (!stop_) {
    if (need_reload) {
      if (auto st = reload(); !st) {
        {
          std::lock_guard lock(mu_);
          last_error_ = st.error().message;
        }
        spdlog::warn("store: cannot load cluster state, retrying in {} ms: {}", backoff_ms,
                     st.error().message);
        for (int64_t slept = 0; slept < backoff_ms && !stop_; slept += 50) clock_.sleep_ms(50);
        backoff_ms = std::min<int64_t>(backoff_ms * 2, 2000);
        continue;
      }
      need_reload = false;
    }
    int64_t from = 0;
    {
      std::lock_guard lock(mu_);
      from = revision_ + 1;
      watching_ = true;
    }
    const auto st = etcd_.watch(
        schema_.root(), from,
        [this](const std::vector<WatchEvent>& ev, int64_t rev) { apply(ev, rev); }, stop_);
    {
      std::lock_guard lock(mu_);
      watching_ = false;
      if (!st) last_error_ = st.error().message;
    }
    if (stop_) break;
    if (!st && st.error().code == Errc::kConflict) {
      // Our revision was compacted away: the events in between are gone, so
      // the only correct continuation is a full reload.
      spdlog::info("store: {}; reloading the cluster state", st.error().message);
      need_reload = true;
      continue;
    }
    if (!st) {
      spdlog::debug("store: watch ended: {}", st.error().message);
      for (int64_t slept = 0; slept < backoff_ms && !stop_; slept += 50) clock_.sleep_ms(50);
      backoff_ms = std::min<int64_t>(backoff_ms * 2, 2000);
    } else {
      backoff_ms = 50;
    }
  }
}

Result<int64_t> Store::create_node(const NodeRecord& node) {
  return retry_transient<int64_t>(
      [&](bool after_unknown) { return create_node_once(node, after_unknown); });
}

Result<int64_t> Store::create_node_once(const NodeRecord& node, bool after_unknown) {
  const std::string key = schema_.node_key(node.name);
  auto r = etcd_.txn({Compare::absent(key)}, {TxnOp::put(key, Schema::encode_node(node))}, {},
                     write_timeout_ms());
  if (!r) return r.error();
  if (r->succeeded) return r->revision;
  if (after_unknown) {
    // An earlier attempt timed out: if the record is ours, it committed.
    auto cur = etcd_.get(key, false, write_timeout_ms());
    if (!cur) return cur.error();
    if (!cur->kvs.empty() && cur->kvs[0].value == Schema::encode_node(node))
      return cur->kvs[0].mod_revision;
  }
  return make_error(Errc::kConflict, "node '" + node.name + "' already exists");
}

Result<int64_t> Store::update_node(const std::string& name,
                                   const std::function<Status(NodeRecord&)>& mutate) {
  return update_key(schema_.node_key(name),
                    [&](std::optional<std::string>& value, int64_t) -> Status {
                      if (!value)
                        return make_error(Errc::kNotFound, "no node named '" + name + "'");
                      auto node = Schema::decode_node(*value);
                      if (!node) return node.error();
                      if (auto st = mutate(*node); !st) return st;
                      value = Schema::encode_node(*node);
                      return Ok{};
                    });
}

Result<int64_t> Store::update_directives(const std::function<Status(DirectivesRecord&)>& mutate) {
  return update_key(schema_.directives_key(),
                    [&](std::optional<std::string>& value, int64_t) -> Status {
                      DirectivesRecord d;
                      if (value) {
                        auto cur = Schema::decode_directives(*value);
                        if (!cur) return cur.error();
                        d = *cur;
                      }
                      if (auto st = mutate(d); !st) return st;
                      value = Schema::encode_directives(d);
                      return Ok{};
                    });
}

Result<int64_t> Store::put_resources(
    const std::function<Status(std::optional<ResourcesRecord>&)>& mutate) {
  return update_key(schema_.resources_key(),
                    [&](std::optional<std::string>& value, int64_t mod_revision) -> Status {
                      std::optional<ResourcesRecord> rec;
                      if (value) {
                        auto cur = Schema::decode_resources(*value);
                        // A record this version cannot read is replaced, as
                        // any other: the mutation sees none.
                        if (cur) {
                          rec = std::move(*cur);
                          rec->mod_revision = mod_revision;
                        }
                      }
                      if (auto st = mutate(rec); !st) return st;
                      if (!rec) return make_error(Errc::kInvalid, "no resources record to write");
                      value = Schema::encode_resources(*rec);
                      return Ok{};
                    });
}

Result<int64_t> Store::update_key(const std::string& key, const KeyMutation& mutate) {
  return retry_transient<int64_t>([&](bool) { return update_key_once(key, mutate); });
}

Result<int64_t> Store::update_key_once(const std::string& key, const KeyMutation& mutate) {
  for (int attempt = 0; attempt < kWriteAttemptsMax; ++attempt) {
    // The first attempt compares against the cached revision, which is
    // almost always current and saves a round trip; if another writer got
    // there first the compare fails, and later attempts read through etcd.
    std::optional<KeyValue> current;
    bool known = false;
    if (attempt == 0) {
      std::lock_guard lock(mu_);
      if (loaded_) {
        known = true;
        if (auto it = kvs_.find(key); it != kvs_.end()) current = it->second;
      }
    }
    if (!known) {
      auto cur = etcd_.get(key, false, write_timeout_ms());
      if (!cur) return cur.error();
      if (!cur->kvs.empty()) current = cur->kvs[0];
    }
    std::optional<std::string> value;
    if (current) value = current->value;
    if (auto st = mutate(value, current ? current->mod_revision : 0); !st) return st.error();
    // Nothing to change: no write, and the revision of what is there. The
    // cache may lag, so only what etcd itself just said counts.
    if (current && value && *value == current->value) {
      if (!known) return current->mod_revision;
      continue;  // read it through etcd
    }
    const Compare cmp =
        current ? Compare::mod_revision(key, current->mod_revision) : Compare::absent(key);
    const TxnOp op = value ? TxnOp::put(key, *value) : TxnOp::del(key);
    auto r = etcd_.txn({cmp}, {op}, {}, write_timeout_ms());
    if (!r) return r.error();
    if (r->succeeded) return r->revision;
    // Another writer won the compare. Two writers retrying in lockstep can
    // keep beating each other: a short random pause breaks the tie.
    const uint64_t spread = 5 * (static_cast<uint64_t>(attempt) + 1);
    clock_.sleep_ms(1 + static_cast<int64_t>(random_u64() % spread));
  }
  return make_error(Errc::kConflict, key + " kept changing; gave up after " +
                                         std::to_string(kWriteAttemptsMax) + " attempts");
}

Result<int64_t> Store::delete_node(const std::string& name) {
  return retry_transient<int64_t>(
      [&](bool after_unknown) { return delete_node_once(name, after_unknown); });
}

Result<int64_t> Store::delete_node_once(const std::string& name, bool after_unknown) {
  const std::string key = schema_.node_key(name);
  auto cur = etcd_.get(key, false, write_timeout_ms());
  if (!cur) return cur.error();
  if (cur->kvs.empty()) {
    // Gone after an attempt that timed out: that attempt committed.
    if (after_unknown) return cur->revision;
    return make_error(Errc::kNotFound, "no node named '" + name + "'");
  }
  auto r = etcd_.txn({Compare::mod_revision(key, cur->kvs[0].mod_revision)}, {TxnOp::del(key)}, {},
                     write_timeout_ms());
  if (!r) return r.error();
  if (!r->succeeded)
    return make_error(Errc::kConflict, "node '" + name + "' changed during removal");
  return r->revision;
}

}  // namespace bulwark
