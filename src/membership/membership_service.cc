#include "membership/membership_service.h"

#include <algorithm>

namespace bulwark {

MembershipService::MembershipService(const Clock& clock, std::unique_ptr<Membership> membership,
                                     UdpSocket socket)
    : membership_(std::move(membership)), socket_(std::move(socket)), clock_(clock) {}

MembershipService::~MembershipService() { stop(); }

void MembershipService::start() {
  thread_ = std::thread([this] { run(); });
}

void MembershipService::stop() {
  stop_ = true;
  socket_.wake();
  if (thread_.joinable()) thread_.join();
}

void MembershipService::set_members(const std::vector<PeerEndpoint>& members) {
  std::lock_guard lock(mu_);
  membership_->set_members(members);
}

void MembershipService::set_watched(const std::string& name) {
  std::lock_guard lock(mu_);
  membership_->set_watched(name);
}

MembershipView MembershipService::view() const {
  std::lock_guard lock(mu_);
  return membership_->view();
}

void MembershipService::run() {
  while (!stop_) {
    std::vector<Datagram> out;
    int64_t wait_ms = 0;
    {
      std::lock_guard lock(mu_);
      out = membership_->tick();
      wait_ms = std::max<int64_t>(0, membership_->next_tick_ms() - clock_.mono_ms());
    }
    for (const auto& d : out) socket_.send_to(d.address, d.port, d.bytes);
    auto received = socket_.receive(static_cast<int>(wait_ms));
    if (!received) continue;
    std::optional<Datagram> reply;
    {
      std::lock_guard lock(mu_);
      reply = membership_->receive(*received);
    }
    if (reply) socket_.send_to(reply->address, reply->port, reply->bytes);
  }
}

}  // namespace bulwark
