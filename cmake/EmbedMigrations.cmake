# Run with -P: writes OUT, a C++ file returning the SQL files FILES.
set(body "// Generated from ${NAME}'s migrations/*.sql; do not edit.\n#include \"common/migrate.h\"\n\nnamespace examiso {\n\nstd::vector<Migration> ${NAME}_migrations() {\n  return {\n")
foreach(f ${FILES})
  get_filename_component(version ${f} NAME)
  file(READ ${f} sql)
  string(APPEND body "      {\"${version}\", R\"examiso_sql(${sql})examiso_sql\"},\n")
endforeach()
string(APPEND body "  };\n}\n\n}  // namespace examiso\n")
file(WRITE ${OUT} "${body}")
