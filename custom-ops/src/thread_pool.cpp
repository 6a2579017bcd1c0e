#include "thread_pool.h"

#include <algorithm>
#include <memory>

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)
#include <immintrin.h>
#endif

namespace falcon_onnx {
namespace {

// Tells the core that this is a spin-wait loop, so the other hyperthread gets the pipeline.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)
  _mm_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

// A decode step of the mixer takes tens of microseconds and a sleeping thread about as long to wake, so
// threads spin this many rounds (tens of microseconds) before they sleep.
constexpr int kSpinRounds = 2000;

constexpr uint64_t kFieldBits = 24;
constexpr uint64_t kFieldMask = (uint64_t{1} << kFieldBits) - 1;
constexpr std::size_t kMaxTasksPerSlice = kFieldMask;

uint64_t generation_of(uint64_t word) { return word >> (2 * kFieldBits); }
uint64_t count_of(uint64_t word) { return (word >> kFieldBits) & kFieldMask; }
uint64_t next_of(uint64_t word) { return word & kFieldMask; }
uint64_t pack(uint64_t generation, uint64_t count) { return (generation << (2 * kFieldBits)) | (count << kFieldBits); }

}  // namespace

ThreadPool::ThreadPool(int threads) {
  const int extra = std::max(0, threads - 1);
  workers_.reserve(extra);
  for (int i = 0; i < extra; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(wake_mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& worker : workers_) worker.join();
}

const ThreadPool& ThreadPool::shared(int threads) {
  if (threads <= 0) threads = std::max(1u, std::thread::hardware_concurrency());
  static std::mutex pools_mutex;
  static std::vector<std::unique_ptr<ThreadPool>> pools;
  std::lock_guard<std::mutex> lock(pools_mutex);
  for (const auto& pool : pools)
    if (pool->size() == threads) return *pool;
  pools.push_back(std::make_unique<ThreadPool>(threads));
  return *pools.back();
}

void ThreadPool::run(std::size_t count, void (*task)(void*, std::size_t), void* context) const {
  if (workers_.empty() || count <= 1) {
    for (std::size_t i = 0; i < count; ++i) task(context, i);
    return;
  }
  std::lock_guard<std::mutex> one_job(run_mutex_);
  task_ = task;
  context_ = context;
  for (std::size_t first = 0; first < count; first += kMaxTasksPerSlice)
    run_slice(first, std::min(kMaxTasksPerSlice, count - first));
}

void ThreadPool::run_slice(std::size_t first, std::size_t count) const {
  first_index_ = first;
  completed_.store(0, std::memory_order_relaxed);
  const uint64_t generation = (generation_of(job_word_.load(std::memory_order_relaxed)) + 1) & 0xffff;
  job_word_.store(pack(generation, count), std::memory_order_release);
  { std::lock_guard<std::mutex> lock(wake_mutex_); }
  wake_.notify_all();
  claim_tasks(generation);
  for (int round = 0; round < kSpinRounds && completed_.load(std::memory_order_acquire) != count; ++round) cpu_relax();
  std::unique_lock<std::mutex> lock(wake_mutex_);
  done_.wait(lock, [&] { return completed_.load(std::memory_order_acquire) == count; });
}

// Claims and runs tasks of job `generation` until none is left. A claim succeeds only while the job has
// unclaimed tasks, and the job's fields change only after all its tasks completed, so the fields read
// after a successful claim are this job's.
void ThreadPool::claim_tasks(uint64_t generation) const {
  uint64_t word = job_word_.load(std::memory_order_acquire);
  while (generation_of(word) == generation && next_of(word) < count_of(word)) {
    if (!job_word_.compare_exchange_weak(word, word + 1, std::memory_order_acq_rel, std::memory_order_acquire))
      continue;
    task_(context_, first_index_ + next_of(word));
    if (completed_.fetch_add(1, std::memory_order_acq_rel) + 1 == count_of(word)) {
      std::lock_guard<std::mutex> lock(wake_mutex_);
      done_.notify_all();
    }
    word = job_word_.load(std::memory_order_acquire);
  }
}

uint64_t ThreadPool::wait_for_new_job(uint64_t seen_generation) const {
  for (int round = 0; round < kSpinRounds; ++round) {
    const uint64_t generation = generation_of(job_word_.load(std::memory_order_acquire));
    if (generation != seen_generation || stopping_.load(std::memory_order_relaxed)) return generation;
    cpu_relax();
  }
  std::unique_lock<std::mutex> lock(wake_mutex_);
  wake_.wait(lock, [&] {
    return generation_of(job_word_.load(std::memory_order_acquire)) != seen_generation || stopping_.load();
  });
  return generation_of(job_word_.load(std::memory_order_acquire));
}

void ThreadPool::worker_loop() const {
  uint64_t seen = 0;
  while (true) {
    seen = wait_for_new_job(seen);
    if (stopping_.load()) return;
    claim_tasks(seen);
  }
}

}  // namespace falcon_onnx
