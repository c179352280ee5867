// `bulwark dev`: local clusters on loopback for development, demos and tests.
// Each node gets its own loopback address (127.0.K.1, 127.0.K.2, ...) so that
// services on different nodes can use the same port, as on real hosts; each
// cluster directory claims its own K, so several clusters run side by side.
// No root needed.
#pragma once

#include <string>

#include "core/error.h"

namespace bulwark {

struct DevOptions {
  std::string dir = ".bulwark-dev";
  int nodes = 3;
  int subnet = 0;  // K of 127.0.K.x; 0: the first free one
  int heartbeat_ms = 50;
  int lease_ms = 300;
  std::string node;  // kill/start/add
  std::string signal = "KILL";
  bool json = false;
  bool purge = false;
  bool no_fencing = false;  // up: a cluster without a fence agent
  std::string ocf_root;     // up: agents.ocf_root of a new cluster (empty: Debian's)
  int timeout_ms = 60000;
};

int dev_up(const DevOptions& o);
int dev_down(const DevOptions& o);
int dev_ls(const DevOptions& o);
int dev_kill(const DevOptions& o);
int dev_start(const DevOptions& o);
int dev_add(const DevOptions& o);
// A fence agent (fence-agents interface) for dev clusters: reads action and
// plug on stdin; off kills the node's whole process tree.
int dev_fence(const DevOptions& o);
// After `bulwark node remove NODE` of a dev cluster's node: waits until the
// node's processes are gone (its daemon stops its resources and exits),
// then drops it from the cluster directory's configuration, so that `dev
// up` no longer starts it.
Status dev_forget_node(const std::string& dir, const std::string& node);

}  // namespace bulwark
