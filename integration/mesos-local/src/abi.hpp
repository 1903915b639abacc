// Drover mesos-local: the few pieces of the Mesos 1.11.0 C++ ABI that the
// helpers call inside `_scheduler.so` (libmesos, statically linked into the
// CPython 2.7 extension of the `mesos.scheduler` package).
//
// The library is used unmodified and without its headers: every entry point
// is declared here with its exact mangled name (GCC asm labels), using the
// Itanium C++ ABI calling convention on x86-64:
//   - `this` is the first argument;
//   - a class returned by value that is not trivially copyable is written
//     through a hidden pointer passed *before* `this`;
//   - a `const T&` parameter is passed as a pointer.
#ifndef DROVER_MESOS_LOCAL_ABI_HPP
#define DROVER_MESOS_LOCAL_ABI_HPP

#include <cstddef>
#include <new>
#include <string>

namespace drover {

// stout's `Option<std::string>`: `{ enum { SOME = 0, NONE = 1 } state; union { T t; }; }`.
struct OptionString {
  enum State { SOME = 0, NONE = 1 };

  int state;
  union { std::string value; };

  OptionString() : state(NONE) {}
  explicit OptionString(const std::string& s) : state(SOME) { new (&value) std::string(s); }
  ~OptionString() { if (state == SOME) value.~basic_string(); }

  OptionString(const OptionString&) = delete;
  OptionString& operator=(const OptionString&) = delete;
};

static_assert(offsetof(OptionString, value) == 8, "Option<std::string> layout");
static_assert(sizeof(OptionString) == 8 + sizeof(std::string), "Option<std::string> layout");

} // namespace drover

// ---------------------------------------------------------------- host ----

// bool process::initialize(const Option<std::string>& delegate,
//                          const Option<std::string>& readwriteAuthenticationRealm,
//                          const Option<std::string>& readonlyAuthenticationRealm);
bool drover_process_initialize(
    const drover::OptionString& delegate,
    const drover::OptionString& readwriteRealm,
    const drover::OptionString& readonlyRealm)
  __asm__("_ZN7process10initializeERK6OptionINSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEEES9_S9_");

// mesos::FrameworkInfo::FrameworkInfo()
void drover_FrameworkInfo_ctor(void* self)
  __asm__("_ZN5mesos13FrameworkInfoC1Ev");

// bool google::protobuf::MessageLite::ParseFromString(const std::string&)
bool drover_MessageLite_ParseFromString(void* self, const std::string& data)
  __asm__("_ZN6google8protobuf11MessageLite15ParseFromStringERKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE");

// mesos::MesosSchedulerDriver::MesosSchedulerDriver(
//     mesos::Scheduler*, const mesos::FrameworkInfo&, const std::string& master);
void drover_MesosSchedulerDriver_ctor(
    void* self, void* scheduler, const void* frameworkInfo, const std::string& master)
  __asm__("_ZN5mesos20MesosSchedulerDriverC1EPNS_9SchedulerERKNS_13FrameworkInfoERKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE");

// void mesos::internal::local::shutdown();
void drover_local_shutdown()
  __asm__("_ZN5mesos8internal5local8shutdownEv");

// -------------------------------------------------------- containerizer ----

// The vtable of mesos::internal::slave::MesosContainerizerLaunch
// (offset-to-top, typeinfo, D1, D0, execute, getFlags).
extern "C" char drover_MesosContainerizerLaunch_vtable[]
  __asm__("_ZTVN5mesos8internal5slave24MesosContainerizerLaunchE");

// flags::FlagsBase::FlagsBase()
void drover_FlagsBase_ctor(void* self)
  __asm__("_ZN5flags9FlagsBaseC1Ev");

// mesos::internal::slave::MesosContainerizerLaunch::Flags::Flags()  (complete object)
void drover_MesosContainerizerLaunch_Flags_ctor(void* self)
  __asm__("_ZN5mesos8internal5slave24MesosContainerizerLaunch5FlagsC1Ev");

// Try<flags::Warnings, Error> flags::FlagsBase::load(
//     const Option<std::string>& prefix, int argc, const char* const* argv,
//     bool unknowns, bool duplicates);
void drover_FlagsBase_load(
    void* result, void* self, const drover::OptionString& prefix,
    int argc, const char* const* argv, bool unknowns, bool duplicates)
  __asm__("_ZN5flags9FlagsBase4loadERK6OptionINSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEEEiPKPKcbb");

// flags::FlagsBase* mesos::internal::slave::MesosContainerizerLaunch::getFlags();
void* drover_MesosContainerizerLaunch_getFlags(void* self)
  __asm__("_ZN5mesos8internal5slave24MesosContainerizerLaunch8getFlagsEv");

// int mesos::internal::slave::MesosContainerizerLaunch::execute();
int drover_MesosContainerizerLaunch_execute(void* self)
  __asm__("_ZN5mesos8internal5slave24MesosContainerizerLaunch7executeEv");

#endif // DROVER_MESOS_LOCAL_ABI_HPP
