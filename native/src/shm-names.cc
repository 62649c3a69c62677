// See shm-names.h for why these names exist and how the sweep stays away from live endpoints.
#include "shm-names.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <vector>

namespace dinomo {
namespace {

const char kShmDir[] = "/dev/shm";
const char kPrefix[] = "dinomo-";
const char kLockSuffix[] = ".lock";

std::atomic<unsigned> nextTag{0};

bool EndsWith(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

std::vector<std::string> ShmEntries() {
  std::vector<std::string> names;
  DIR* dir = opendir(kShmDir);
  if (dir == nullptr) return names;
  while (dirent* entry = readdir(dir)) {
    if (std::strncmp(entry->d_name, kPrefix, sizeof(kPrefix) - 1) == 0) {
      names.emplace_back(entry->d_name);
    }
  }
  closedir(dir);
  return names;
}

std::string LockPath(const std::string& tag) {
  return std::string(kShmDir) + "/" + tag + kLockSuffix;
}

}  // namespace

int SweepDeadShmNames() {
  const std::vector<std::string> names = ShmEntries();
  int unlinked = 0;
  for (const std::string& name : names) {
    if (!EndsWith(name, kLockSuffix)) continue;
    const std::string tag = name.substr(0, name.size() - (sizeof(kLockSuffix) - 1));
    const int fd = open(LockPath(tag).c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) continue;
    // A live holder keeps a shared lock: an exclusive one is granted only when it has died.
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
      const std::string segmentPrefix = tag + ":";
      for (const std::string& other : names) {
        if (other.compare(0, segmentPrefix.size(), segmentPrefix) == 0 &&
            shm_unlink(other.c_str()) == 0) {
          unlinked++;
        }
      }
      unlink(LockPath(tag).c_str());
    }
    close(fd);
  }
  return unlinked;
}

bool ShmEndpointName::Acquire(std::string* error) {
  Release();
  SweepDeadShmNames();
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  tag_ = std::string(kPrefix) + std::to_string(getpid()) + "-" + std::to_string(nextTag++) + "-" +
         std::to_string(static_cast<unsigned long long>(ts.tv_sec) * 1000000000ull +
                        static_cast<unsigned long long>(ts.tv_nsec));
  const std::string path = LockPath(tag_);
  lockFd_ = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (lockFd_ < 0 || flock(lockFd_, LOCK_SH) != 0) {
    *error = "cannot create the shm endpoint's lock file " + path + ": " + std::strerror(errno) +
             " (is /dev/shm mounted and writable?)";
    Release();
    return false;
  }
  return true;
}

void ShmEndpointName::Release() {
  if (lockFd_ >= 0) {
    unlink(LockPath(tag_).c_str());
    close(lockFd_);
  }
  lockFd_ = -1;
  tag_.clear();
}

}  // namespace dinomo
