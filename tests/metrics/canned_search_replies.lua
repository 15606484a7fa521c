-- valkey-search 1.2.1's replies, in place of the search metrics script's `local call`
-- (tests/metrics/test_scrape.py): shaped as its source writes them, and as they reach Lua
-- (a status reply as {ok = text}). FT._LIST: simple strings (src/commands/ft_list.cc).
-- FT.INFO LOCAL: src/index_schema.cc, IndexSchema::RespondWithInfo, and src/attribute.cc
-- (num_docs, num_records as integers; hash_indexing_failures, backfill_*, mutation_* as
-- bulk strings; state as a status). INFO search: its fields prefixed by the module's name.
-- "gone" is listed, then dropped before its FT.INFO.
local call = function(command, argument)
  local function s(text)
    return { ok = text }
  end
  if command == 'FT._LIST' then
    return { s('books'), s('films:2026'), s('gone') }
  end
  if command == 'FT.INFO' and argument == 'books' then
    return {
      s('index_name'), s('books'),
      s('index_definition'), { s('key_type'), s('HASH'), s('prefixes'), { s('book:') }, s('default_score'), '1' },
      s('attributes'), {
        { s('identifier'), s('title'), s('attribute'), s('title'), s('user_indexed_memory'), 1200,
          s('type'), s('TEXT'), s('WITH_SUFFIX_TRIE'), 0, s('NO_STEM'), 0 },
        { s('identifier'), s('vec'), s('attribute'), s('vec'), s('user_indexed_memory'), 3400,
          s('type'), s('VECTOR'),
          s('index'), { s('capacity'), 10240, s('dimensions'), 8, s('distance_metric'), s('L2'), s('size'), 42,
            s('data_type'), s('FLOAT32'), s('algorithm'), { s('name'), s('HNSW'), s('m'), 16 } } },
      },
      s('num_docs'), 42,
      s('num_records'), 84,
      s('total_term_occurrences'), 90,
      s('num_terms'), 12,
      s('hash_indexing_failures'), '3',
      s('backfill_in_progress'), '1',
      s('backfill_complete_percent'), '0.250000',
      s('mutation_queue_size'), '7',
      s('recent_mutations_queue_delay'), '12 sec',
      s('state'), s('backfill_paused_by_oom'),
      s('punctuation'), s(',.<>{}[]"\':;!@#$%^&*()-+=~/\\|'),
      s('stop_words'), { s('a'), s('the') },
      s('with_offsets'), s('1'),
      s('min_stem_size'), 4,
      s('language'), s('english'),
    }
  end
  if command == 'FT.INFO' and argument == 'films:2026' then
    return {
      s('index_name'), s('films:2026'),
      s('index_definition'), { s('key_type'), s('JSON'), s('prefixes'), { s('film:') }, s('default_score'), '1' },
      s('attributes'), {
        { s('identifier'), s('$.year'), s('attribute'), s('year'), s('user_indexed_memory'), 0, s('type'), s('NUMERIC') },
      },
      s('num_docs'), 0,
      s('num_records'), 0,
      s('total_term_occurrences'), 0,
      s('num_terms'), 0,
      s('hash_indexing_failures'), '0',
      s('backfill_in_progress'), '0',
      s('backfill_complete_percent'), '1.000000',
      s('mutation_queue_size'), '0',
      s('recent_mutations_queue_delay'), '0 sec',
      s('state'), s('ready'),
      s('language'), s('english'),
    }
  end
  if command == 'FT.INFO' then
    return { err = 'Index with name \'' .. tostring(argument) .. '\' not found' }
  end
  if command == 'INFO' then
    return '# search_memory\r\nsearch_used_memory_bytes:123456\r\nsearch_used_memory_human:120.56KiB\r\n'
      .. '# search_index_stats\r\nsearch_number_of_indexes:3\r\n'
      .. '# search_indexing\r\nsearch_background_indexing_status:IN_PROGRESS\r\n'
      .. '# search_coordinator\r\nsearch_coordinator_server_listening_port:26673\r\n'
      .. 'search_coordinator_client_search_index_partition_failure_count:2\r\n'
      .. 'search_coordinator_client_get_global_metadata_failure_count:0\r\n'
  end
  return { err = 'ERR unknown command' }
end
