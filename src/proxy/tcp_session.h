// A TCP (layer 4) connection: one server per client connection, bytes moved
// in both directions with splice(2) through a pipe, so they never enter user
// space. A failed connect is retried on another server before any byte of
// the client's is read, so the client never notices.
#pragma once

#include "proxy/session.h"
#include "proxy/worker.h"

namespace bulwark::proxy {

class TcpSession final : public Session {
 public:
  TcpSession(Worker& worker, int client_fd, std::shared_ptr<Frontend> frontend,
             const SocketAddress& peer);
  ~TcpSession() override;

  void start() override;
  void on_client_event(uint32_t events) override;
  void on_server_event(uint32_t events) override;
  void on_timeout() override;
  void on_dequeue(Backend::Choice choice) override;
  void on_stopping() override {}
  void resume() override { run(); }

 private:
  // One direction of the stream.
  struct Pipe {
    int fds[2] = {-1, -1};
    std::size_t buffered = 0;  // bytes inside the pipe
    bool in_readable = true;
    bool out_writable = true;
    bool in_eof = false;
    bool shut = false;  // write side of the destination shut down
  };
  enum class Phase : uint8_t { kQueued, kConnecting, kStreaming };

  void dispatch();
  void attach(std::shared_ptr<Server> server);
  void connect_failed();
  void run();
  // Moves what it can in one direction.
  enum class Pumped { kIdle, kMore, kBroken };
  Pumped pump(Pipe& p, int from, int to, bool to_server);
  void release_pipe(Pipe& p);

  Phase phase_ = Phase::kConnecting;
  Pipe up_;    // client to server
  Pipe down_;  // server to client
  std::shared_ptr<const BackendConfig> settings_;
  int attempts_ = 0;
  const Server* last_tried_ = nullptr;
  int64_t last_activity_ms_ = 0;
};

}  // namespace bulwark::proxy
