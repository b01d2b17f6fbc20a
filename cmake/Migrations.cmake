# examiso_add_migrations(<target> <name> <dir>): embeds <dir>/*.sql, in file-name
# order, into <target> as `std::vector<examiso::Migration> <name>_migrations()`,
# so a binary carries its schema wherever it runs.
set(EXAMISO_EMBED_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/EmbedMigrations.cmake)

function(examiso_add_migrations target name dir)
  file(GLOB sql CONFIGURE_DEPENDS ${dir}/*.sql)
  list(SORT sql)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/${name}_migrations.cc)
  list(JOIN sql "|" files)
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DNAME=${name} -DOUT=${out} "-DFILES=${files}" -P ${EXAMISO_EMBED_SCRIPT}
    DEPENDS ${sql} ${EXAMISO_EMBED_SCRIPT}
    COMMENT "embedding ${name} migrations"
    VERBATIM)
  target_sources(${target} PRIVATE ${out})
endfunction()
