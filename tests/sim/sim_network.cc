#include "sim/sim_network.h"

namespace bulwark::sim {

void SimNetwork::send(int64_t now_ms, int from, int to, std::vector<uint8_t> bytes, Rng& rng) {
  // Randomness is drawn whatever happens, so that a cut link does not shift
  // every later draw of the run.
  const bool dropped = rng.chance(profile_.drop_per_mille + link(from, to).loss_per_mille);
  const bool spike = rng.chance(profile_.spike_per_mille);
  const int64_t delay_ms = spike ? rng.range(profile_.delay_max_ms, profile_.spike_max_ms)
                                 : rng.range(0, profile_.delay_max_ms);
  if (dropped || !up(from, to) || in_flight_.size() >= kInFlightMax) return;
  in_flight_.push(Packet{now_ms + delay_ms, next_seq_++, from, to, std::move(bytes)});
}

std::vector<Packet> SimNetwork::take_due(int64_t now_ms) {
  std::vector<Packet> out;
  while (!in_flight_.empty() && in_flight_.top().deliver_ms <= now_ms) {
    Packet p = in_flight_.top();
    in_flight_.pop();
    if (up(p.from, p.to)) out.push_back(std::move(p));
  }
  return out;
}

void SimNetwork::heal() {
  for (auto& l : links_) l = Link{};
}

}  // namespace bulwark::sim
