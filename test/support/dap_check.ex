defmodule DebugReload.Test.DapCheck do
  @moduledoc """
  Validates DAP messages with a real JSON-schema validator: the `dap-check`
  binary (the `jsonschema` crate) against the official DAP schema in
  `../shared/dap`, plus our own body schema from `docs/`.
  """

  import ExUnit.Assertions

  @root Path.expand("../..", __DIR__)
  # shared/ sits beside the project checkout (as in CI); DAP_SCHEMA overrides.
  @dap_schema System.get_env("DAP_SCHEMA") ||
                Path.expand("../shared/dap/debugAdapterProtocol.json", @root)
  @body_schema Path.join(@root, "docs/reload_code_response.schema.json")

  @doc """
  Each check is `{definition, message}` or `{definition, message, :reload_body}`
  (then the body must also satisfy our reloadCode body schema).
  """
  def validate!(checks) do
    File.exists?(@dap_schema) ||
      flunk("the DAP schema #{@dap_schema} is missing (set DAP_SCHEMA to its path)")

    body = @body_schema |> File.read!() |> DebugReload.Native.decode_json() |> elem(1)

    input = %{
      "schema" => @dap_schema,
      "checks" =>
        Enum.map(checks, fn
          {definition, message} ->
            %{"definition" => definition, "message" => message}

          {definition, message, :reload_body} ->
            %{"definition" => definition, "message" => message, "body" => body}
        end)
    }

    path = Path.join(System.tmp_dir!(), "dap_checks_#{System.unique_integer([:positive])}.json")
    File.write!(path, DebugReload.Native.encode_json(input))
    {output, status} = System.cmd(binary(), [path], stderr_to_stdout: true)
    File.rm(path)
    assert status == 0, "DAP schema validation failed:\n#{output}"
    assert length(String.split(String.trim(output), "\n")) == length(checks)
    :ok
  end

  @doc "The right definition for an event map."
  def event_definition(%{"event" => event}) do
    (String.upcase(String.first(event)) <> String.slice(event, 1..-1//1)) <> "Event"
  end

  defp binary do
    dir = System.get_env("CARGO_TARGET_DIR") || Path.join(@root, "target")
    path = Path.join([dir, "dap-check", "dap-check"])

    File.exists?(path) ||
      flunk("#{path} is missing: run `cargo build --profile dap-check -p dap_check` (make test does)")

    path
  end
end
