{#- Use a model's custom schema as its name (`staging`, `marts`) rather than dbt's default
    `<target schema>_<custom schema>`; models without one land in the target schema. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ (custom_schema_name or target.schema) | trim }}
{%- endmacro %}
