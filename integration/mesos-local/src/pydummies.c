/* Drover mesos-local: dummy definitions of the CPython 2.7 C-API symbols that
 * `_scheduler.so` (a CPython 2.7 extension module) references. Only its Python
 * binding uses them, and the helpers never call into that binding, so every
 * function aborts loudly if it is ever reached. They are linked into each
 * helper executable and exported with -rdynamic so that the dynamic linker
 * resolves the library's references to them.
 *
 * `mesos-local build` checks that this list covers every Py* symbol the
 * library leaves undefined. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DROVER_EXPORT __attribute__((visibility("default"), used))

static void drover_python_dummy_called(const char* name) {
  static const char prefix[] = "mesos-local: CPython 2.7 dummy called: ";
  ssize_t ignored = write(2, prefix, sizeof(prefix) - 1);
  ignored = write(2, name, strlen(name));
  ignored = write(2, "\n", 1);
  (void) ignored;
  abort();
}

/* Data. */
DROVER_EXPORT long _Py_NoneStruct[2];      /* PyObject { ob_refcnt, ob_type } */
DROVER_EXPORT void* PyExc_Exception = 0;   /* PyObject* */
DROVER_EXPORT void* PyExc_TypeError = 0;   /* PyObject* */

/* Functions. */
#define DROVER_PY_DUMMY(name) \
  DROVER_EXPORT void name(void) { drover_python_dummy_called(#name); }

DROVER_PY_DUMMY(PyArg_ParseTuple)
DROVER_PY_DUMMY(PyDict_GetItemString)
DROVER_PY_DUMMY(PyErr_Format)
DROVER_PY_DUMMY(PyErr_Occurred)
DROVER_PY_DUMMY(PyErr_Print)
DROVER_PY_DUMMY(PyEval_InitThreads)
DROVER_PY_DUMMY(PyEval_RestoreThread)
DROVER_PY_DUMMY(PyEval_SaveThread)
DROVER_PY_DUMMY(PyGILState_Ensure)
DROVER_PY_DUMMY(PyGILState_Release)
DROVER_PY_DUMMY(PyImport_ImportModule)
DROVER_PY_DUMMY(PyInt_FromLong)
DROVER_PY_DUMMY(PyIter_Next)
DROVER_PY_DUMMY(PyList_GetItem)
DROVER_PY_DUMMY(PyList_New)
DROVER_PY_DUMMY(PyList_SetItem)
DROVER_PY_DUMMY(PyList_Size)
DROVER_PY_DUMMY(PyModule_AddObject)
DROVER_PY_DUMMY(PyModule_GetDict)
DROVER_PY_DUMMY(PyObject_CallMethod)
DROVER_PY_DUMMY(PyObject_GetIter)
DROVER_PY_DUMMY(PyString_AsStringAndSize)
DROVER_PY_DUMMY(PyType_Ready)
DROVER_PY_DUMMY(Py_InitModule4_64)
