// Store and EtcdClient against a real etcd member with mutual TLS: epoch
// fencing, claim races, revision-compared writes under contention, the
// watch-fed cache and compaction.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <thread>

#include "classes/registry/agent_classes.h"
#include "security/certs.h"
#include "store/etcd_client.h"
#include "store/store.h"
#include "sys/process.h"
#include "sys/system_clock.h"

namespace bulwark {
namespace {

namespace fs = std::filesystem;

class EtcdFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    // As in bulwarkd: a peer closing a kept-alive TLS connection must turn
    // into a write error, not kill the process.
    ::signal(SIGPIPE, SIG_IGN);
    char tmpl[] = "/tmp/bulwark-store-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    // A random 127.2.x.y address: another copy of this test can run beside.
    std::random_device rd;
    address_ = "127.2." + std::to_string(rd() % 250 + 1) + "." + std::to_string(rd() % 250 + 1);
    ASSERT_TRUE(create_ca(dir_ + "/tls", "test").ok());
    ASSERT_TRUE(issue_node_certificate(dir_ + "/tls", "n1", {address_, "127.0.0.1"}).ok());
    const std::string url = "https://" + address_;
    const std::string tls = dir_ + "/tls/";
    SpawnOptions o;
    o.argv = {"/usr/bin/etcd",
              "--name=n1",
              "--data-dir=" + dir_ + "/etcd",
              "--listen-client-urls=" + url + ":2379",
              "--advertise-client-urls=" + url + ":2379",
              "--listen-peer-urls=" + url + ":2380",
              "--initial-advertise-peer-urls=" + url + ":2380",
              "--initial-cluster=n1=" + url + ":2380",
              "--cert-file=" + tls + "n1.crt",
              "--key-file=" + tls + "n1.key",
              "--trusted-ca-file=" + tls + "ca.crt",
              "--client-cert-auth=true",
              "--peer-cert-file=" + tls + "n1.crt",
              "--peer-key-file=" + tls + "n1.key",
              "--peer-trusted-ca-file=" + tls + "ca.crt"};
    o.env = current_environment({"ETCD"});
    o.log_file = dir_ + "/etcd.log";
    o.death_signal = SIGKILL;
    auto pid = spawn_process(o);
    ASSERT_TRUE(pid.ok()) << pid.error().message;
    pid_ = *pid;
    EtcdClientOptions eo;
    eo.endpoints = {url + ":2379"};
    eo.ca_file = tls + "ca.crt";
    eo.cert_file = tls + "n1.crt";
    eo.key_file = tls + "n1.key";
    eo.clock = &clock_;
    etcd_ = std::make_unique<EtcdClient>(eo);
    for (int i = 0; i < 200; ++i) {
      if (etcd_->get("/").ok()) return;
      sleep_ms(50);
    }
    FAIL() << "etcd did not start; see " << dir_ << "/etcd.log";
  }

  void TearDown() override {
    stores_.clear();
    etcd_.reset();
    if (pid_ > 0) terminate_process(pid_, 5000);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  Store& store(const std::string& name) {
    stores_.push_back(std::make_unique<Store>(clock_, *etcd_, Schema("/bulwark/t"),
                                              agent_class_syntaxes(), name, 1000));
    return *stores_.back();
  }

  SystemClock clock_;
  std::string dir_;
  std::string address_;
  pid_t pid_ = -1;
  std::unique_ptr<EtcdClient> etcd_;
  std::vector<std::unique_ptr<Store>> stores_;
};

TEST_F(EtcdFixture, SupersededEpochCannotWrite) {
  Store& a = store("t");
  Store& b = store("t");
  auto ea = a.writes().claim_coordinator("a", std::nullopt);
  ASSERT_TRUE(ea.ok()) << ea.error().message;
  EXPECT_EQ(ea->epoch, 1);
  // b saw a's record and takes over, as after a's node went silent.
  auto eb = b.writes().claim_coordinator("b", *ea);
  ASSERT_TRUE(eb.ok()) << eb.error().message;
  EXPECT_EQ(eb->epoch, 2);
  // a wakes up and writes with its old epoch: refused, nothing written.
  auto w = a.writes().coordinator_write(*ea, {}, {TxnOp::put("/bulwark/t/liveness", "from-a")});
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().code, Errc::kEpochSuperseded);
  auto got = etcd_->get("/bulwark/t/liveness");
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->kvs.empty());
  // a cannot claim from its stale view either.
  auto again = a.writes().claim_coordinator("a", *ea);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, Errc::kConflict);
  // The current holder writes fine.
  EXPECT_TRUE(
      b.writes().coordinator_write(*eb, {}, {TxnOp::put("/bulwark/t/liveness", "from-b")}).ok());
}

TEST_F(EtcdFixture, ConcurrentClaimsYieldOneHolder) {
  for (int round = 0; round < 5; ++round) {
    std::optional<CoordinatorRecord> seen;
    auto cur = etcd_->get("/bulwark/t/coordinator");
    ASSERT_TRUE(cur.ok());
    if (!cur->kvs.empty()) {
      auto rec = Schema::decode_coordinator(cur->kvs[0].value);
      ASSERT_TRUE(rec.ok());
      seen = *rec;
      seen->mod_revision = cur->kvs[0].mod_revision;
    }
    std::vector<Result<CoordinatorRecord>> results(4, make_error(Errc::kIo, "not run"));
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
      Store& s = store("t");
      threads.emplace_back([&, i, seen] {
        results[i] = s.writes().claim_coordinator("c" + std::to_string(i), seen);
      });
    }
    for (auto& t : threads) t.join();
    int winners = 0;
    for (const auto& r : results) {
      if (r.ok())
        ++winners;
      else
        EXPECT_EQ(r.error().code, Errc::kConflict) << r.error().message;
    }
    EXPECT_EQ(winners, 1) << "round " << round;
  }
}

TEST_F(EtcdFixture, WatchFedCacheAndNoLostUpdates) {
  Store& s = store("t");
  s.start();
  NodeRecord n;
  n.name = "n1";
  n.address = "127.0.0.1";
  auto created = store("t").create_node(n);
  ASSERT_TRUE(created.ok()) << created.error().message;
  ASSERT_TRUE(s.wait_for_revision(*created, 5000));
  ASSERT_EQ(s.state().nodes.count("n1"), 1u);
  EXPECT_EQ(store("t").create_node(n).error().code, Errc::kConflict);
  // Two writers increment one attribute 15 times each: compare-and-swap with
  // retries must lose none of the 30 increments.
  Store& w1 = store("t");
  Store& w2 = store("t");
  auto bump = [&](Store& w) {
    for (int i = 0; i < 15; ++i) {
      auto r = w.update_node("n1", [](NodeRecord& rec) -> Status {
        const int v = rec.attributes.count("count") ? std::stoi(rec.attributes["count"]) : 0;
        rec.attributes["count"] = std::to_string(v + 1);
        return Ok{};
      });
      EXPECT_TRUE(r.ok()) << r.error().message;
    }
  };
  std::thread t1([&] { bump(w1); });
  std::thread t2([&] { bump(w2); });
  t1.join();
  t2.join();
  auto got = etcd_->get("/bulwark/t/nodes/n1");
  ASSERT_TRUE(got.ok());
  auto rec = Schema::decode_node(got->kvs.at(0).value);
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->attributes["count"], "30");
  ASSERT_TRUE(s.wait_for_revision(got->kvs[0].mod_revision, 5000));
  EXPECT_EQ(s.state().nodes.at("n1").attributes.at("count"), "30");
  EXPECT_EQ(
      store("t").update_node("ghost", [](NodeRecord&) -> Status { return Ok{}; }).error().code,
      Errc::kNotFound);
  auto del = store("t").delete_node("n1");
  ASSERT_TRUE(del.ok());
  ASSERT_TRUE(s.wait_for_revision(*del, 5000));
  EXPECT_EQ(s.state().nodes.count("n1"), 0u);
  EXPECT_TRUE(s.cache_info().watching);
}

TEST_F(EtcdFixture, WatchFromACompactedRevisionIsReportedForReload) {
  int64_t last = 0;
  for (int i = 0; i < 5; ++i) {
    auto r = etcd_->txn({}, {TxnOp::put("/bulwark/t/k" + std::to_string(i), "v")});
    ASSERT_TRUE(r.ok());
    last = r->revision;
  }
  ASSERT_TRUE(etcd_->compact(last).ok());
  std::atomic<bool> stop{false};
  auto st = etcd_->watch(
      "/bulwark/t/", 2, [](const std::vector<WatchEvent>&, int64_t) {}, stop);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::kConflict);
  EXPECT_NE(st.error().message.find("compacted"), std::string::npos);
  // A store started now loads the current state in full and watches on.
  Store& s = store("t");
  s.start();
  ASSERT_TRUE(s.wait_for_revision(last, 5000));
  EXPECT_GE(s.cache_info().reloads, 1);
}

TEST_F(EtcdFixture, UnreachableEndpointsAreReportedNotHung) {
  EtcdClientOptions eo;
  eo.endpoints = {"https://127.0.0.1:9", "https://" + address_ + ":2379"};
  eo.ca_file = dir_ + "/tls/ca.crt";
  eo.cert_file = dir_ + "/tls/n1.crt";
  eo.key_file = dir_ + "/tls/n1.key";
  eo.clock = &clock_;
  EtcdClient fallback(eo);
  // The first endpoint refuses; the read moves on to the second.
  EXPECT_TRUE(fallback.get("/").ok());
  eo.endpoints = {"https://127.0.0.1:9"};
  EtcdClient dead(eo);
  auto r = dead.get("/");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kUnavailable);
  EXPECT_NE(r.error().message.find("etcd unavailable"), std::string::npos);
  // Without a client certificate etcd refuses the TLS session.
  eo.endpoints = {"https://" + address_ + ":2379"};
  eo.cert_file = eo.key_file = "";
  EtcdClient anonymous(eo);
  EXPECT_FALSE(anonymous.get("/").ok());
}

// A host that died answers nothing. Here a listener that never accepts:
// the kernel completes TCP, and the TLS handshake then waits for the whole
// connect timeout. Marked unreachable (bulwarkd does it for nodes its
// heartbeats do not reach), it is tried after the live member.
TEST_F(EtcdFixture, AnEndpointMarkedUnreachableIsTriedLast) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  ASSERT_EQ(::inet_pton(AF_INET, address_.c_str(), &sa.sin_addr), 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(::listen(fd, 16), 0);
  socklen_t len = sizeof sa;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len), 0);
  const std::string silent = "https://" + address_ + ":" + std::to_string(ntohs(sa.sin_port));

  EtcdClientOptions eo;
  eo.endpoints = {silent, "https://" + address_ + ":2379"};
  eo.ca_file = dir_ + "/tls/ca.crt";
  eo.cert_file = dir_ + "/tls/n1.crt";
  eo.key_file = dir_ + "/tls/n1.key";
  eo.clock = &clock_;
  eo.request_timeout_ms = 3000;
  EtcdClient client(eo);
  EXPECT_FALSE(client.set_unreachable({silent}));  // no watch to move
  const int64_t start = clock_.mono_ms();
  auto r = client.txn({}, {TxnOp::put("/t/unreachable", "x")});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->succeeded);
  // The silent one first would have cost the 3 s connect timeout.
  EXPECT_LT(clock_.mono_ms() - start, 1500);
  // Reachable again: back in its place, first.
  EXPECT_FALSE(client.set_unreachable({}));
  EXPECT_EQ(client.endpoints().front(), silent);
  ::close(fd);
}

}  // namespace
}  // namespace bulwark
