// A client connection being served by a worker. Sessions belong to exactly
// one worker thread for their whole life and are never touched by another.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <vector>

#include "proxy/frontend.h"

namespace bulwark::proxy {

class Worker;

// Buffers of one worker that are not in use, kept for the next request so
// that a busy connection does not go to malloc twice per request, and an
// idle one holds no buffer at all.
class BufferCache {
 public:
  ~BufferCache() {
    for (char* b : free_) std::free(b);
  }
  char* get(std::size_t capacity) {
    if (capacity == kCachedBytes && !free_.empty()) {
      char* b = free_.back();
      free_.pop_back();
      return b;
    }
    return static_cast<char*>(std::malloc(capacity));
  }
  void put(char* data, std::size_t capacity) {
    if (capacity == kCachedBytes && free_.size() < kCachedMax) {
      free_.push_back(data);
    } else {
      std::free(data);
    }
  }
  static constexpr std::size_t kCachedBytes = 17408;  // default max_header_bytes + 1 KiB
  static constexpr std::size_t kCachedMax = 512;

 private:
  std::vector<char*> free_;
};

// A byte buffer with a read and a write position, allocated only while in
// use.
class Buffer {
 public:
  Buffer() = default;
  ~Buffer() { std::free(data_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  bool allocate(std::size_t capacity, BufferCache& cache) {
    if (data_) return true;
    data_ = cache.get(capacity);
    capacity_ = data_ ? capacity : 0;
    return data_ != nullptr;
  }
  void release(BufferCache& cache) {
    if (data_) cache.put(data_, capacity_);
    data_ = nullptr;
    capacity_ = 0;
    start_ = end_ = 0;
  }
  void release_if_empty(BufferCache& cache) {
    if (size() == 0) release(cache);
  }
  char* head() { return data_ + start_; }
  std::size_t size() const { return end_ - start_; }
  bool empty() const { return end_ == start_; }
  // Free space at the tail, after moving the content to the front when
  // that frees a useful amount.
  std::size_t make_space() {
    if (start_ > 0 && end_ > capacity_ / 2) {
      std::memmove(data_, data_ + start_, size());
      end_ -= start_;
      start_ = 0;
    }
    return capacity_ - end_;
  }
  char* tail() { return data_ + end_; }
  void produced(std::size_t n) { end_ += n; }
  void consume(std::size_t n) {
    start_ += n;
    if (start_ == end_) start_ = end_ = 0;
  }

 private:
  char* data_ = nullptr;
  std::size_t capacity_ = 0;
  std::size_t start_ = 0;
  std::size_t end_ = 0;
};

class Session {
 public:
  Session(Worker& worker, int client_fd, std::shared_ptr<Frontend> frontend,
          const SocketAddress& peer);
  virtual ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Entry points from the worker's event loop.
  virtual void start() = 0;
  virtual void on_client_event(uint32_t events) = 0;
  virtual void on_server_event(uint32_t events) = 0;
  virtual void on_timeout() = 0;
  // A slot freed on the backend while this session waited in the queue.
  virtual void on_dequeue(Backend::Choice choice) = 0;
  // The proxy is stopping: finish the exchange in flight, take no more.
  virtual void on_stopping() = 0;
  // Goes on after the session stopped at its bound on work per turn.
  virtual void resume() = 0;
  // A reload replaced the frontend: follow the new one (same name and mode),
  // or, when it is gone (null), finish like on_stopping().
  void rebind(std::shared_ptr<Frontend> frontend);
  const std::string& frontend_name() const { return frontend_->config.name; }
  Mode frontend_mode() const { return frontend_->config.mode; }

  bool closed() const { return closed_; }
  uint64_t client_hash() const;
  int64_t deadline_ms() const { return deadline_ms_; }

  // Worker bookkeeping: the session list and the timer map.
  Session* prev_ = nullptr;
  Session* next_ = nullptr;
  std::multimap<int64_t, Session*>::iterator timer_;
  bool timer_set_ = false;

 protected:
  // Closes both sides and hands the session to the worker for deletion.
  void close();
  void close_server();
  void set_deadline(int64_t deadline_ms);
  // Passive health: counts a failure of real traffic against server_.
  void report_server_failure();
  // Bytes to or from server_, counted for it and for its backend.
  void count_server_bytes(Counter counter, uint64_t bytes);

  Worker& worker_;
  const int client_fd_;
  int server_fd_ = -1;
  std::shared_ptr<Frontend> frontend_;
  // The backend of the request (or connection) in progress: a reload may
  // point the frontend elsewhere, but server_'s slot belongs to this one.
  std::shared_ptr<Backend> backend_;
  const SocketAddress peer_;
  std::shared_ptr<Server> server_;  // holds an active slot on it while set
  bool closed_ = false;
  int64_t deadline_ms_ = 0;
};

}  // namespace bulwark::proxy
