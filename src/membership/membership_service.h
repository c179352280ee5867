// Runs Membership on its own thread over a real UDP socket. Other threads
// read a snapshot of the view; they never block the heartbeat loop for long.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "membership/membership.h"
#include "sys/udp_socket.h"

namespace bulwark {

class MembershipService {
 public:
  MembershipService(const Clock& clock, std::unique_ptr<Membership> membership, UdpSocket socket);
  ~MembershipService();

  void start();
  void stop();
  void set_members(const std::vector<PeerEndpoint>& members);
  void set_watched(const std::string& name);
  MembershipView view() const;

 private:
  void run();

  std::unique_ptr<Membership> membership_;
  UdpSocket socket_;
  mutable std::mutex mu_;  // guards membership_
  std::atomic<bool> stop_{false};
  std::thread thread_;
  const Clock& clock_;
};

}  // namespace bulwark
