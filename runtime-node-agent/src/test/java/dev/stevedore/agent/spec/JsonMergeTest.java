package dev.stevedore.agent.spec;

import static dev.stevedore.agent.spec.Specs.json;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class JsonMergeTest {

    /** RFC 7386, appendix A: the examples whose patch is an object (an ociSpec always is). */
    @ParameterizedTest(name = "{0} + {1} = {2}")
    @CsvSource(delimiter = '|', textBlock = """
            {"a":"b"}                  | {"a":"c"}                      | {"a":"c"}
            {"a":"b"}                  | {"b":"c"}                      | {"a":"b","b":"c"}
            {"a":"b"}                  | {"a":null}                     | {}
            {"a":"b","b":"c"}          | {"a":null}                     | {"b":"c"}
            {"a":["b"]}                | {"a":"c"}                      | {"a":"c"}
            {"a":"c"}                  | {"a":["b"]}                    | {"a":["b"]}
            {"a":{"b":"c"}}            | {"a":{"b":"d","c":null}}       | {"a":{"b":"d"}}
            {"a":[{"b":"c"}]}          | {"a":[1]}                      | {"a":[1]}
            {"e":null}                 | {"a":1}                        | {"e":null,"a":1}
            {"a":"foo"}                | {"a":{"bb":{"ccc":null}}}      | {"a":{"bb":{}}}
            {}                         | {"a":{"bb":{"ccc":null}}}      | {"a":{"bb":{}}}
            {"a":{"x":1,"y":{"z":2}}}  | {"a":{"y":{"w":3}}}            | {"a":{"x":1,"y":{"z":2,"w":3}}}
            """)
    void mergesAsRfc7386(String target, String patch, String expected) {
        ObjectNode result = JsonMerge.apply(json(target), json(patch));
        assertThat(result).isEqualTo(json(expected));
    }

    @Test
    void theResultSharesNothingWithThePatch() {
        ObjectNode patch = json("{\"k\":[1],\"o\":{\"p\":[2]}}");
        ObjectNode result = JsonMerge.apply(json("{}"), patch);
        ((ArrayNode) result.get("k")).add(3);
        ((ArrayNode) result.path("o").get("p")).add(4);
        assertThat(patch).isEqualTo(json("{\"k\":[1],\"o\":{\"p\":[2]}}"));
    }
}
