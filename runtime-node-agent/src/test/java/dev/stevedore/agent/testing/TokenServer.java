package dev.stevedore.agent.testing;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.math.BigInteger;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.Signature;
import java.security.cert.X509Certificate;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Date;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicInteger;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * A token server for the distribution registry's bearer flow (what Docker Hub's auth.docker.io does): checks Basic
 * credentials, grants the scopes asked for, and signs a JWT with a self-signed key the registry trusts
 * ({@code rootcertbundle}), the certificate travelling in the token's {@code x5c} header.
 */
public final class TokenServer implements AutoCloseable {
    static final String SERVICE = "stevedore-test-registry";
    static final String ISSUER = "stevedore-test-issuer";
    private static final ObjectMapper JSON = new ObjectMapper();

    private final String user;
    private final String password;
    private final KeyPair key;
    private final X509Certificate certificate;
    private final HttpServer server;
    private final AtomicInteger issued = new AtomicInteger();

    public TokenServer(String user, String password) {
        this.user = user;
        this.password = password;
        try {
            KeyPairGenerator generator = KeyPairGenerator.getInstance("RSA");
            generator.initialize(2048);
            this.key = generator.generateKeyPair();
            this.certificate = selfSigned(key);
            this.server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        server.createContext("/token", this::handle);
        server.start();
    }

    public String realm() {
        return "http://127.0.0.1:" + server.getAddress().getPort() + "/token";
    }

    /** How many tokens were handed out: proof that a client went through the flow. */
    public int issued() {
        return issued.get();
    }

    String certificatePem() {
        StringWriter out = new StringWriter();
        try (JcaPEMWriter pem = new JcaPEMWriter(out)) {
            pem.writeObject(certificate);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toString();
    }

    @Override
    public void close() {
        server.stop(0);
    }

    private void handle(HttpExchange exchange) throws IOException {
        try (exchange) {
            String expected = "Basic "
                    + Base64.getEncoder().encodeToString((user + ":" + password).getBytes(StandardCharsets.UTF_8));
            if (!expected.equals(exchange.getRequestHeaders().getFirst("Authorization"))) {
                exchange.sendResponseHeaders(401, -1);
                return;
            }
            List<Map<String, Object>> access = new ArrayList<>();
            String query = exchange.getRequestURI().getRawQuery();
            for (String parameter : query == null ? new String[0] : query.split("&")) {
                String[] pair = parameter.split("=", 2);
                if (pair[0].equals("scope") && pair.length == 2) {
                    // repository:NAME:ACTION[,ACTION]
                    String[] scope =
                            URLDecoder.decode(pair[1], StandardCharsets.UTF_8).split(":");
                    access.add(Map.of("type", scope[0], "name", scope[1], "actions", List.of(scope[2].split(","))));
                }
            }
            byte[] body = JSON.writeValueAsBytes(Map.of("token", jwt(access)));
            exchange.getResponseHeaders().set("Content-Type", "application/json");
            exchange.sendResponseHeaders(200, body.length);
            exchange.getResponseBody().write(body);
            issued.incrementAndGet();
        } catch (GeneralSecurityException e) {
            throw new IOException(e);
        }
    }

    private String jwt(List<Map<String, Object>> access) throws IOException, GeneralSecurityException {
        long now = Instant.now().getEpochSecond();
        Map<String, Object> header = Map.of(
                "typ",
                "JWT",
                "alg",
                "RS256",
                "x5c",
                List.of(Base64.getEncoder().encodeToString(certificate.getEncoded())));
        Map<String, Object> claims = Map.of(
                "iss",
                ISSUER,
                "sub",
                user,
                "aud",
                SERVICE,
                "exp",
                now + 300,
                "nbf",
                now - 60,
                "iat",
                now,
                "jti",
                UUID.randomUUID().toString(),
                "access",
                access);
        Base64.Encoder base64url = Base64.getUrlEncoder().withoutPadding();
        String signed = base64url.encodeToString(JSON.writeValueAsBytes(header)) + "."
                + base64url.encodeToString(JSON.writeValueAsBytes(claims));
        Signature signature = Signature.getInstance("SHA256withRSA");
        signature.initSign(key.getPrivate());
        signature.update(signed.getBytes(StandardCharsets.US_ASCII));
        return signed + "." + base64url.encodeToString(signature.sign());
    }

    private static X509Certificate selfSigned(KeyPair key) throws GeneralSecurityException {
        try {
            X500Name name = new X500Name("CN=" + ISSUER);
            Instant now = Instant.now();
            var builder = new JcaX509v3CertificateBuilder(
                    name,
                    BigInteger.valueOf(now.toEpochMilli()),
                    Date.from(now.minus(1, ChronoUnit.HOURS)),
                    Date.from(now.plus(1, ChronoUnit.DAYS)),
                    name,
                    key.getPublic());
            builder.addExtension(Extension.basicConstraints, true, new BasicConstraints(true));
            return new JcaX509CertificateConverter()
                    .getCertificate(
                            builder.build(new JcaContentSignerBuilder("SHA256withRSA").build(key.getPrivate())));
        } catch (org.bouncycastle.operator.OperatorCreationException | org.bouncycastle.cert.CertIOException e) {
            throw new GeneralSecurityException(e);
        }
    }
}
