// A small persistent thread pool behind ParallelRunner, for callers without a pool of their own (the
// harness, the `threads` overload of mamba2_mixer_cpu). Inside ORT the kernel uses ORT's intra-op pool.
//
// The caller works on its own job and waits only for tasks that a worker has claimed, never for workers
// to wake up: on a busy machine a descheduled worker then costs nothing, the caller just does more tasks.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "falcon_onnx/mamba2_mixer.h"

namespace falcon_onnx {

class ThreadPool final : public ParallelRunner {
 public:
  // threads counts the calling thread too: 1 runs everything on the caller.
  explicit ThreadPool(int threads);
  ~ThreadPool() override;
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void run(std::size_t count, void (*task)(void*, std::size_t), void* context) const override;
  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // One shared pool per thread count, created on first use and kept for the life of the process.
  static const ThreadPool& shared(int threads);

 private:
  void run_slice(std::size_t first, std::size_t count) const;
  void claim_tasks(uint64_t generation) const;
  uint64_t wait_for_new_job(uint64_t seen_generation) const;
  void worker_loop() const;

  std::vector<std::thread> workers_;
  mutable std::mutex run_mutex_;  // one job at a time
  mutable std::mutex wake_mutex_;
  mutable std::condition_variable wake_;
  mutable std::condition_variable done_;
  // generation (16 bits) | task count (24 bits) | next unclaimed task (24 bits), in one word so that a
  // claim checks the job it belongs to and the claim itself in one compare-and-swap.
  mutable std::atomic<uint64_t> job_word_{0};
  mutable void (*task_)(void*, std::size_t) = nullptr;  // stable while the job has unclaimed tasks
  mutable void* context_ = nullptr;
  mutable std::size_t first_index_ = 0;
  mutable std::atomic<std::size_t> completed_{0};
  std::atomic<bool> stopping_{false};
};

}  // namespace falcon_onnx
