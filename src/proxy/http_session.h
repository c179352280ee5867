// An HTTP/1.1 client connection: reads one request at a time, forwards it
// to a server chosen per request (reusing idle server connections), streams
// the response back, and keeps both sides alive when the protocol allows.
// Pipelined requests wait in the client buffer until the response before
// them is complete, so responses can never be reordered. An upgrade (e.g.
// WebSocket) that the server accepts with 101 turns the connection into a
// tunnel of raw bytes until either side closes.
#pragma once

#include <array>
#include <string>

#include "proxy/http_parser.h"
#include "proxy/session.h"
#include "proxy/worker.h"

namespace bulwark::proxy {

class HttpSession final : public Session {
 public:
  HttpSession(Worker& worker, int client_fd, std::shared_ptr<Frontend> frontend,
              const SocketAddress& peer);
  ~HttpSession() override;

  void start() override;
  void on_client_event(uint32_t events) override;
  void on_server_event(uint32_t events) override;
  void on_timeout() override;
  void on_dequeue(Backend::Choice choice) override;
  void on_stopping() override;
  void resume() override { run(); }

 private:
  enum class Phase : uint8_t { kIdle, kQueued, kConnecting, kExchange, kTunnel, kClosing };
  enum class Failure : uint8_t { kConnect, kConnectTimeout, kReset, kServerTimeout, kBadResponse };
  enum class Io : uint8_t { kData, kAgain, kEof, kError, kFull };

  void run();
  bool step_idle();
  void begin_request(const RequestHead& head);
  void dispatch();
  void attach(std::shared_ptr<Server> server);
  bool send_request();
  bool pump_response();
  bool parse_response_head();
  bool flush_to_client();
  bool pump_tunnel();
  bool flush_to_server();
  void finish_exchange();
  void server_failed(Failure failure);
  void respond_error(int status);
  void start_closing();
  void flush_closing();
  void refresh_deadline();
  bool waiting_on_client() const;
  Io read_into(int fd, Buffer& buffer, bool& readable, bool peer_closed, Counter counter);
  // The server connection can carry the next request: nothing unread on it
  // and no sign that the server closed it.
  bool server_reusable();
  const std::string& client_ip();

  CounterSlice& frontend_stats() { return frontend_->counters->slice(worker_.index()); }
  CounterSlice& backend_stats() { return backend_->counters().slice(worker_.index()); }
  CounterSlice& server_stats() { return server_->counters().slice(worker_.index()); }

  const std::size_t buffer_bytes_;
  Buffer cin_;            // from the client: request heads and bodies
  Buffer sin_;            // from the server: response heads and bodies
  std::string req_head_;  // the rewritten request head for the server
  std::string resp_out_;  // rewritten response heads (or an error) for the client
  std::size_t req_head_sent_ = 0;
  std::size_t resp_out_sent_ = 0;
  std::size_t req_ready_ = 0;   // body bytes at the front of cin_ ready to send
  std::size_t resp_ready_ = 0;  // body bytes at the front of sin_ ready to send
  BodyFramer req_body_;
  BodyFramer resp_body_;
  std::shared_ptr<const BackendConfig> settings_;
  Phase phase_ = Phase::kIdle;

  bool client_readable_ = true;
  bool client_writable_ = true;
  bool server_readable_ = false;
  bool server_writable_ = false;
  // EPOLLRDHUP seen: the peer shut its side, so a short read did not drain
  // the socket (the end of stream is still to be read).
  bool client_peer_closed_ = false;
  bool server_peer_closed_ = false;
  bool first_request_ = true;
  bool req_done_ = false;            // the whole request went to the server
  bool response_head_done_ = false;  // the final response head was parsed
  bool response_started_ = false;    // a byte came from the server
  bool response_forwarded_ = false;  // a byte of the response went to the client
  bool keep_alive_ = true;           // keep the client connection after this exchange
  bool server_keep_alive_ = false;
  bool server_reused_ = false;
  bool is_head_ = false;
  bool idempotent_ = false;
  bool has_body_ = false;
  bool shut_down_ = false;
  bool upgrade_requested_ = false;
  bool client_eof_ = false;  // tunnel: the client shut its side
  bool server_eof_ = false;  // tunnel: the server shut its side
  int version_minor_ = 1;
  int response_status_ = 0;
  int attempts_ = 0;
  int tried_count_ = 0;
  std::array<const Server*, 8> tried_{};
  int64_t request_start_us_ = 0;
  int64_t idle_since_ms_ = 0;
  int64_t head_start_ms_ = 0;
  int64_t phase_deadline_ms_ = 0;  // queue, connect and closing deadlines
  int64_t last_activity_ms_ = 0;
  std::string client_ip_;
};

}  // namespace bulwark::proxy
