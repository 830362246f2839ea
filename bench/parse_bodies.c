/*
 * parse_bodies.c: half of baseline (a) of the benchmarks.  Parses answer
 * bodies the way any json-c client must (every record's every value
 * visited), so that "curl + this" is the floor for a sequential client
 * built on json-c.  Usage: parse_bodies FILE...; prints the records seen.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

static long
visit(json_object *value)
{
	long		n = 0;

	switch (json_object_get_type(value))
	{
		case json_type_object:
			{
				json_object_object_foreach(value, key, member)
				{
					(void) key;
					n += visit(member);
				}
				return n + 1;
			}
		case json_type_array:
			{
				size_t		i;

				for (i = 0; i < json_object_array_length(value); i++)
					n += visit(json_object_array_get_idx(value, i));
				return n + 1;
			}
		case json_type_string:
			return (long) json_object_get_string_len(value) > 0;
		default:
			return 1;
	}
}

int
main(int argc, char **argv)
{
	long		records = 0;
	int			i;

	for (i = 1; i < argc; i++)
	{
		FILE	   *f = fopen(argv[i], "rb");
		char	   *buf;
		long		len;
		json_object *root;
		json_object *data;

		if (f == NULL)
			continue;
		fseek(f, 0, SEEK_END);
		len = ftell(f);
		fseek(f, 0, SEEK_SET);
		buf = malloc(len + 1);
		if (fread(buf, 1, len, f) != (size_t) len)
			len = 0;
		buf[len] = '\0';
		fclose(f);
		root = json_tokener_parse(buf);
		free(buf);
		if (root == NULL)
			continue;
		if (json_object_object_get_ex(root, "data", &data))
			records += json_object_array_length(data);
		else
			records++;
		visit(root);
		json_object_put(root);
	}
	printf("%ld\n", records);
	return 0;
}
