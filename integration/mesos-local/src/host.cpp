// mesos-local-host: runs a real Apache Mesos 1.11.0 master plus
// MESOS_NUM_SLAVES agents in this one process (Mesos' own "local" mode),
// using libmesos from `_scheduler.so` unmodified.
//
// It does what Mesos' `mesos-local` does:
//   1. process::initialize("master"), so the master is libprocess' delegate
//      and `/api/v1/scheduler` works without the `/master` prefix;
//   2. constructs a MesosSchedulerDriver with master "local", whose
//      constructor reads the MESOS_* flags from the environment and calls
//      mesos::internal::local::launch() (master + agents);
//   3. never calls start(): no framework of ours registers, every offer is
//      left to HTTP frameworks (Drover);
//   4. blocks until SIGTERM/SIGINT/SIGHUP, then mesos::internal::local::shutdown().
//
// All configuration comes from the environment (see the `mesos-local` script).
// Drover-specific, optional: DROVER_MESOS_LOCAL_PARENT_PID=<pid> makes the host
// terminate when that parent dies (used by `mesos-local start --foreground`).

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <chrono>

#include <pthread.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "abi.hpp"

namespace {

// Same virtual-table shape as mesos::Scheduler: a virtual destructor, then
// the 10 pure virtuals registered, reregistered, disconnected, resourceOffers,
// offerRescinded, statusUpdate, frameworkMessage, slaveLost, executorLost,
// error. All return void. The driver is never started, so none is ever
// called; each only logs, in case.
class NullScheduler {
public:
  virtual ~NullScheduler() {}
  virtual void registered(void*, const void*, const void*) { note("registered"); }
  virtual void reregistered(void*, const void*) { note("reregistered"); }
  virtual void disconnected(void*) { note("disconnected"); }
  virtual void resourceOffers(void*, const void*) { note("resourceOffers"); }
  virtual void offerRescinded(void*, const void*) { note("offerRescinded"); }
  virtual void statusUpdate(void*, const void*) { note("statusUpdate"); }
  virtual void frameworkMessage(void*, const void*, const void*, const void*) { note("frameworkMessage"); }
  virtual void slaveLost(void*, const void*) { note("slaveLost"); }
  virtual void executorLost(void*, const void*, const void*, int) { note("executorLost"); }
  virtual void error(void*, const void*) { note("error"); }

private:
  static void note(const char* what) {
    std::fprintf(stderr, "mesos-local-host: unexpected scheduler callback %s (ignored)\n", what);
  }
};

void appendVarint(std::string* out, unsigned long long v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// Protobuf wire format, length-delimited field.
void appendStringField(std::string* out, int field, const std::string& value) {
  appendVarint(out, (static_cast<unsigned long long>(field) << 3) | 2);
  appendVarint(out, value.size());
  out->append(value);
}

std::string currentUser() {
  struct passwd* pw = getpwuid(geteuid());
  if (pw != nullptr && pw->pw_name != nullptr && pw->pw_name[0] != '\0') {
    return pw->pw_name;
  }
  return "root";
}

// Storage for objects whose exact size we do not know (they are constructed
// by the library's own constructors); generously larger than the real ones.
alignas(64) unsigned char frameworkInfoStorage[4096];
alignas(64) unsigned char driverStorage[64 * 1024];

void die(const char* message) {
  std::fprintf(stderr, "mesos-local-host: %s\n", message);
  std::fflush(stderr);
  _exit(1);
}

} // namespace

int main(int argc, char** argv) {
  (void) argc;
  (void) argv;

  // Block the stop signals before libprocess starts its threads, so that they
  // all inherit the mask and only our sigwait() below receives them.
  sigset_t stopSignals;
  sigemptyset(&stopSignals);
  sigaddset(&stopSignals, SIGTERM);
  sigaddset(&stopSignals, SIGINT);
  sigaddset(&stopSignals, SIGHUP);
  if (pthread_sigmask(SIG_BLOCK, &stopSignals, nullptr) != 0) {
    die("pthread_sigmask failed");
  }

  const char* parent = std::getenv("DROVER_MESOS_LOCAL_PARENT_PID");
  if (parent != nullptr && parent[0] != '\0') {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (static_cast<long>(getppid()) != std::atol(parent)) {
      die("parent already gone");
    }
  }

  const char* port = std::getenv("LIBPROCESS_PORT");
  const char* agents = std::getenv("MESOS_NUM_SLAVES");
  std::fprintf(stderr, "mesos-local-host: pid %ld, starting master and %s agent(s) on 127.0.0.1:%s\n",
               static_cast<long>(getpid()), agents ? agents : "1", port ? port : "?");
  std::fflush(stderr);

  // 1. libprocess, with the master as the delegate for unprefixed paths.
  {
    drover::OptionString delegate(std::string("master"));
    drover::OptionString none1;
    drover::OptionString none2;
    drover_process_initialize(delegate, none1, none2);
  }

  // 2. A FrameworkInfo {user (1), name (2)} for the never-started driver.
  std::string bytes;
  appendStringField(&bytes, 1, currentUser());
  appendStringField(&bytes, 2, "drover-mesos-local-host");
  drover_FrameworkInfo_ctor(frameworkInfoStorage);
  if (!drover_MessageLite_ParseFromString(frameworkInfoStorage, bytes)) {
    die("FrameworkInfo.ParseFromString failed");
  }

  // 3. The driver with master "local": launches the master and the agents.
  static NullScheduler scheduler;
  const std::string master("local");
  drover_MesosSchedulerDriver_ctor(driverStorage, &scheduler, frameworkInfoStorage, master);

  std::fprintf(stderr, "mesos-local-host: master and agents launched; waiting for SIGTERM\n");
  std::fflush(stderr);

  // 4. Wait for a stop signal.
  int received = 0;
  while (sigwait(&stopSignals, &received) != 0) {
  }
  std::fprintf(stderr, "mesos-local-host: received signal %d, shutting down\n", received);
  std::fflush(stderr);

  // Bounded shutdown: `mesos-local stop` SIGKILLs after ~5 s anyway.
  std::thread([]() {
    std::this_thread::sleep_for(std::chrono::milliseconds(4000));
    std::fprintf(stderr, "mesos-local-host: shutdown took too long, exiting\n");
    std::fflush(stderr);
    _exit(2);
  }).detach();

  drover_local_shutdown();

  std::fprintf(stderr, "mesos-local-host: stopped\n");
  std::fflush(stderr);
  // Skip static destructors: libprocess' globals are not meant to be torn down.
  _exit(0);
}
