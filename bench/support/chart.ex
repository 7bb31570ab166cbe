defmodule DebugReload.Bench.Chart do
  @moduledoc """
  A small, dependency-free SVG line chart: time against project size, both
  axes logarithmic, one line per series, every point labelled with its
  value, so the gap between reload and restart reads at a glance.
  """

  @width 780
  @height 440
  @margin %{left: 78, right: 230, top: 48, bottom: 58}

  @type series :: %{label: String.t(), color: String.t(), dashed: boolean(), points: [{number(), number()}]}

  @doc """
  Renders `series` (points are `{modules, milliseconds}`) with `title`.
  Returns the SVG document as a string.
  """
  @spec render(String.t(), [series()]) :: String.t()
  def render(title, series) do
    xs = for s <- series, {x, _} <- s.points, do: x
    ys = for s <- series, {_, y} <- s.points, do: y
    # Points stay clear of the axes so their labels do too.
    x_scale = log_scale(Enum.min(xs), Enum.max(xs), @margin.left + 36, @width - @margin.right - 36)
    # From the decade below the data to a little above its top.
    y_lo = :math.pow(10, Float.floor(:math.log10(Enum.min(ys))))
    y_hi = Enum.max(ys) * 1.5
    y_scale = log_scale(y_lo, y_hi, @height - @margin.bottom, @margin.top)

    [
      ~s(<svg xmlns="http://www.w3.org/2000/svg" width="#{@width}" height="#{@height}" ),
      ~s(viewBox="0 0 #{@width} #{@height}" font-family="sans-serif" font-size="12">\n),
      ~s(<rect width="100%" height="100%" fill="white"/>\n),
      text(@width / 2 - (@margin.right - @margin.left) / 2, 24, escape(title), anchor: "middle", size: 15),
      y_axis(y_scale, y_lo, y_hi),
      x_axis(x_scale, Enum.uniq(Enum.sort(xs))),
      Enum.map(series, &line(&1, x_scale, y_scale)),
      point_labels(series, x_scale, y_scale),
      legend(series),
      "</svg>\n"
    ]
    |> IO.iodata_to_binary()
  end

  defp log_scale(lo, hi, from, to) do
    {llo, lhi} = {:math.log10(lo), :math.log10(hi)}
    span = if lhi == llo, do: 1, else: lhi - llo
    fn v -> from + (:math.log10(v) - llo) / span * (to - from) end
  end

  # Gridlines at 1, 2 and 5 times each power of ten within the range.
  defp y_axis(scale, lo, hi) do
    ticks =
      for e <- round(:math.log10(lo))..ceil(:math.log10(hi)),
          m <- [1, 2, 5],
          v = m * :math.pow(10, e),
          v >= lo and v <= hi do
        y = scale.(v)

        [
          ~s(<line x1="#{@margin.left}" x2="#{@width - @margin.right}" y1="#{f(y)}" y2="#{f(y)}" stroke="#ddd"/>\n),
          text(@margin.left - 8, y + 4, ms_label(v), anchor: "end")
        ]
      end

    label_y = (@margin.top + @height - @margin.bottom) / 2

    [
      ticks,
      ~s[<text x="18" y="#{f(label_y)}" transform="rotate(-90 18 #{f(label_y)})" text-anchor="middle">],
      "median time (log scale)</text>\n"
    ]
  end

  defp x_axis(scale, xs) do
    base = @height - @margin.bottom

    [
      ~s(<line x1="#{@margin.left}" x2="#{@width - @margin.right}" y1="#{base}" y2="#{base}" stroke="#333"/>\n),
      for x <- xs do
        px = scale.(x)

        [
          ~s(<line x1="#{f(px)}" x2="#{f(px)}" y1="#{@margin.top}" y2="#{base}" stroke="#eee"/>\n),
          text(px, base + 18, DebugReload.Bench.Stats.thousands(x), anchor: "middle")
        ]
      end,
      text((@margin.left + @width - @margin.right) / 2, base + 42, "modules in the project (log scale)",
        anchor: "middle"
      )
    ]
  end

  defp line(series, x_scale, y_scale) do
    points = for {x, y} <- Enum.sort(series.points), do: {x_scale.(x), y_scale.(y)}
    path = Enum.map_join(points, " ", fn {px, py} -> "#{f(px)},#{f(py)}" end)
    dash = if series.dashed, do: ~s( stroke-dasharray="6 4"), else: ""

    [
      ~s(<polyline points="#{path}" fill="none" stroke="#{series.color}" stroke-width="2.5"#{dash}/>\n),
      for({px, py} <- points, do: ~s(<circle cx="#{f(px)}" cy="#{f(py)}" r="4" fill="#{series.color}"/>\n))
    ]
  end

  # Value labels beside their points, spread apart vertically where points
  # of several series sit close together at one project size.
  defp point_labels(series, x_scale, y_scale) do
    last_x = series |> Enum.flat_map(& &1.points) |> Enum.map(&elem(&1, 0)) |> Enum.max()

    series
    |> Enum.flat_map(fn s -> for {x, y} <- s.points, do: {x, y_scale.(y) - 7, value_label(y), s.color} end)
    |> Enum.group_by(&elem(&1, 0))
    |> Enum.flat_map(fn {x, labels} ->
      labels
      |> Enum.sort_by(&elem(&1, 1))
      |> spread_apart(14)
      |> Enum.map(fn {_, y, label, color} ->
        # The last column's labels go left of the points, away from the legend.
        if x == last_x,
          do: text(x_scale.(x) - 8, y, label, fill: color, anchor: "end"),
          else: text(x_scale.(x) + 8, y, label, fill: color)
      end)
    end)
  end

  defp spread_apart(labels, gap) do
    {spread, _} =
      Enum.map_reduce(labels, nil, fn {x, y, label, color}, previous ->
        y = if previous && y < previous + gap, do: previous + gap, else: y
        {{x, y, label, color}, y}
      end)

    spread
  end

  defp legend(series) do
    x = @width - @margin.right + 18

    series
    |> Enum.with_index()
    |> Enum.map(fn {s, i} ->
      y = @margin.top + 10 + i * 22
      dash = if s.dashed, do: ~s( stroke-dasharray="6 4"), else: ""

      [
        ~s(<line x1="#{x}" x2="#{x + 24}" y1="#{y}" y2="#{y}" stroke="#{s.color}" stroke-width="2.5"#{dash}/>\n),
        text(x + 30, y + 4, escape(s.label))
      ]
    end)
  end

  defp text(x, y, content, opts \\ []) do
    anchor = Keyword.get(opts, :anchor, "start")
    size = if s = opts[:size], do: ~s( font-size="#{s}"), else: ""
    fill = if c = opts[:fill], do: ~s( fill="#{c}"), else: ""
    ~s(<text x="#{f(x)}" y="#{f(y)}" text-anchor="#{anchor}"#{size}#{fill}>#{content}</text>\n)
  end

  defp ms_label(v) when v >= 1000, do: "#{round(v / 1000)} s"
  defp ms_label(v) when v >= 1, do: "#{round(v)} ms"
  defp ms_label(v), do: "#{v} ms"

  defp value_label(ms) when ms >= 1000, do: :erlang.float_to_binary(ms / 1000, decimals: 1) <> " s"
  defp value_label(ms) when ms >= 10, do: "#{round(ms)} ms"
  defp value_label(ms), do: :erlang.float_to_binary(ms * 1.0, decimals: 1) <> " ms"

  defp f(number), do: :erlang.float_to_binary(number * 1.0, decimals: 1)

  defp escape(text),
    do: text |> String.replace("&", "&amp;") |> String.replace("<", "&lt;") |> String.replace(">", "&gt;")
end
