// Names of the shared-memory segments that libfabric's shm provider creates for our endpoints.
//
// The shm provider backs every endpoint with a 16 MiB POSIX shared-memory segment named
// "<pid>:<uid>:<endpoint index>" and unlinks it only when the endpoint is closed. A process killed
// with kill -9 (or one that exits without closing) leaves its segments in /dev/shm for good, and a
// later process that happens to get the same pid cannot create its own: fi_enable fails with
// EBUSY. So dinomo names its endpoints itself and cleans up after dead processes:
//
//   /dev/shm/dinomo-<pid>-<nonce>.lock         held with flock(LOCK_SH) while the endpoint lives
//   /dev/shm/dinomo-<pid>-<nonce>:<uid>:<idx>  the provider's segment(s) for that endpoint
//
// The tag (pid plus a per-process counter and the monotonic clock) is never reused, so a segment
// name never collides. Before opening an endpoint, a process sweeps: every lock file it can lock
// exclusively belongs to a dead holder (the kernel drops flock locks when a process dies, even on
// kill -9), so the segments of that tag and then the lock file are unlinked. The lock file exists
// before its segments do and is unlinked after them, so a sweep never takes a live endpoint's
// segment. Only names with the dinomo- prefix are touched: other programs' segments are left alone.
#pragma once

#include <string>

namespace dinomo {

class ShmEndpointName {
 public:
  ShmEndpointName() = default;
  ShmEndpointName(const ShmEndpointName&) = delete;
  ShmEndpointName& operator=(const ShmEndpointName&) = delete;
  ~ShmEndpointName() { Release(); }

  // Sweeps dead holders' segments, then creates and locks a fresh tag. Returns false (with a
  // message in *error) when /dev/shm cannot be written.
  bool Acquire(std::string* error);
  // The node name to pass to fi_getinfo with FI_SOURCE: the provider's source address becomes
  // "fi_shm://<tag>" and its segment names "<tag>:<uid>:<idx>".
  const std::string& tag() const { return tag_; }
  // Unlocks and unlinks the lock file. Call after the endpoint is closed (which unlinks its segment).
  void Release();

 private:
  std::string tag_;
  int lockFd_ = -1;
};

// Unlinks the segments and lock files of every dinomo tag whose holder has died. Returns how many
// segments were unlinked.
int SweepDeadShmNames();

}  // namespace dinomo
