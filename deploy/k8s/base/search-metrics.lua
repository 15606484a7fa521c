#!lua flags=no-writes
--[[
valkey-search's own state, for redis_exporter's --script hook (README.md, "Metrics and
alerts"). The exporter runs this with EVAL on its member at every scrape and publishes each
name, value pair it returns as redis_script_values{key="<name>"}; the PodMonitor's
metricRelabelings (deploy/monitoring/podmonitor.yaml) rename that to valkey_<name>, and a
name of the form "<name>:<index>" to valkey_<name>{index="<index>"}.

Per member: search_indexes, search_used_memory_bytes, search_background_indexing, and the
coordinator's search_coordinator_serving, search_coordinator_search_failures_total and
search_coordinator_metadata_failures_total where INFO shows the coordinator. Per index:
search_index_documents, _records, _data_bytes, _backfill_in_progress,
_backfill_complete_ratio, _backfill_paused_by_oom, _mutation_queue_size,
_mutation_queue_delay_seconds and _indexing_failures_total. Reply shapes: valkey-search
1.2.1 (FT._LIST, FT.INFO LOCAL, INFO search).

Without search (not loaded, or a stand-in that has no FT._LIST) it returns nothing: no
search series, and no error, since an error here would fail the whole scrape (the exporter
then reports redis_up 0). An unexpected reply sets search_metrics_error to 1 and keeps what
was read. Read-only (no-writes above): it runs on replicas as on primaries.
]]

-- The tests (tests/metrics) put canned replies in place of this line.
local call = redis.pcall

local out = {}

local function put(name, value)
  out[#out + 1] = name
  out[#out + 1] = tostring(value)
end

local function failed(reply)
  return type(reply) == 'table' and reply.err ~= nil
end

-- A status reply reaches Lua as {ok = text}; bulk strings and integers as themselves.
local function text(reply)
  if type(reply) == 'table' then
    return reply.ok
  end
  return reply
end

-- A number, or the number a string starts with ("5 sec", "0.990000"); nil otherwise.
local function number(reply)
  local value = text(reply)
  if type(value) == 'number' then
    return value
  end
  if type(value) == 'string' then
    return tonumber(string.match(value, '^%s*([-+]?[%d.]+[eE]?[-+]?%d*)'))
  end
  return nil
end

-- An array of alternating names and values as a table of name -> value.
local function pairs_of(reply)
  local fields = {}
  if type(reply) == 'table' and not failed(reply) then
    for i = 1, #reply - 1, 2 do
      local key = text(reply[i])
      if type(key) == 'string' then
        fields[key] = reply[i + 1]
      end
    end
  end
  return fields
end

local function index_metrics(name)
  local info = call('FT.INFO', name)
  if failed(info) or type(info) ~= 'table' then
    return -- dropped between FT._LIST and FT.INFO
  end
  local fields = pairs_of(info)
  local function each(metric, value)
    if value ~= nil then
      put(metric .. ':' .. name, value)
    end
  end
  each('search_index_documents', number(fields.num_docs))
  each('search_index_records', number(fields.num_records))
  each('search_index_indexing_failures_total', number(fields.hash_indexing_failures))
  each('search_index_backfill_in_progress', number(fields.backfill_in_progress))
  each('search_index_backfill_complete_ratio', number(fields.backfill_complete_percent))
  each('search_index_mutation_queue_size', number(fields.mutation_queue_size))
  each('search_index_mutation_queue_delay_seconds', number(fields.recent_mutations_queue_delay))
  local state = text(fields.state)
  if type(state) == 'string' then
    each('search_index_backfill_paused_by_oom', state == 'backfill_paused_by_oom' and 1 or 0)
  end
  -- valkey-search 1.2.1 reports no memory of an index's own: the bytes of user data its
  -- attributes took in is the per-index figure (search_used_memory_bytes is the module's).
  if type(fields.attributes) == 'table' then
    local bytes = 0
    for _, attribute in ipairs(fields.attributes) do
      bytes = bytes + (number(pairs_of(attribute).user_indexed_memory) or 0)
    end
    each('search_index_data_bytes', bytes)
  end
end

local function member_metrics()
  local info = call('INFO', 'search')
  if type(info) ~= 'string' then
    return
  end
  local fields = {}
  for key, value in string.gmatch(info, '([%w_]+):([^\r\n]*)') do
    fields[key] = value
  end
  local memory = number(fields.search_used_memory_bytes)
  if memory ~= nil then
    put('search_used_memory_bytes', memory)
  end
  if fields.search_background_indexing_status ~= nil then
    put('search_background_indexing', fields.search_background_indexing_status == 'IN_PROGRESS' and 1 or 0)
  end
  -- Shown only while the coordinator is on (cluster mode).
  local port = number(fields.search_coordinator_server_listening_port)
  if port ~= nil then
    put('search_coordinator_serving', port > 0 and 1 or 0)
    local searches = number(fields.search_coordinator_client_search_index_partition_failure_count)
    local metadata = number(fields.search_coordinator_client_get_global_metadata_failure_count)
    if searches ~= nil then
      put('search_coordinator_search_failures_total', searches)
    end
    if metadata ~= nil then
      put('search_coordinator_metadata_failures_total', metadata)
    end
  end
end

local list = call('FT._LIST')
if failed(list) or type(list) ~= 'table' then
  return out
end
local ok = pcall(function()
  put('search_indexes', #list)
  for _, entry in ipairs(list) do
    local name = text(entry)
    if type(name) == 'string' then
      index_metrics(name)
    end
  end
  member_metrics()
end)
put('search_metrics_error', ok and 0 or 1)
return out
