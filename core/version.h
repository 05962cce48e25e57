/*
 * core/version.h - flightrec's version, from one place: `git describe` at
 * build time (CMakeLists.txt), e.g. "0.1.0+g41ba02f" or "1.2.0".
 */
#ifndef FR_CORE_VERSION_H
#define FR_CORE_VERSION_H

extern const char fr_version[];

#endif
