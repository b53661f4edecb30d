package dev.stevedore.operator.pullcredentials;

import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.StringWriter;
import java.math.BigInteger;
import java.net.HttpURLConnection;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.PKCS8EncodedKeySpec;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Date;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.CertIOException;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.openssl.jcajce.JcaPKCS8Generator;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The TLS certificate the operator's endpoints serve — pull credentials, for the agents, and the aggregated
 * subresources API, for the API server — and the CA both check it against.
 *
 * <p>Kept in a Secret of type {@code kubernetes.io/tls} ({@code tls.crt}, {@code tls.key}, {@code ca.crt}, as
 * cert-manager writes them) in the operator's namespace: the first replica to start without one generates a CA and
 * a serving certificate (the CA's key is thrown away: a new pair replaces both), the other replicas read it. The CA
 * is published in a ConfigMap that the agents mount, and in the APIService's caBundle. Generated here rather than by the chart: the chart is also
 * rendered by {@code helm template} (the plain manifest, GitOps tools), where Helm can neither keep a generated key
 * across renders nor keep one out of the rendered file.
 */
public final class ServingCertificate {
    static final String CERT = "tls.crt";
    static final String KEY = "tls.key";
    static final String CA = "ca.crt";

    private static final Logger LOG = LoggerFactory.getLogger(ServingCertificate.class);
    private static final Duration VALIDITY = Duration.ofDays(3650);
    private static final SecureRandom RANDOM = new SecureRandom();

    private ServingCertificate() {}

    /** The serving certificate and key, and the CA that issued it, in PEM. */
    public record Pems(String certificate, String privateKey, String ca) {}

    /**
     * The serving key and certificate of the Secret {@code namespace/secretName}, generated for {@code names} (DNS
     * names or IP addresses) when there is none; its CA published in the ConfigMap {@code caConfigMap}.
     */
    static SSLContext ensure(
            KubernetesClient client, String namespace, String secretName, String caConfigMap, List<String> names)
            throws IOException, GeneralSecurityException {
        Pems pems = ensurePems(client, namespace, secretName, caConfigMap, names);
        return sslContext(pems.certificate(), pems.privateKey());
    }

    /** As {@link #ensure}, in PEM: for servers that take their key and certificate so. */
    public static Pems ensurePems(
            KubernetesClient client, String namespace, String secretName, String caConfigMap, List<String> names)
            throws IOException, GeneralSecurityException {
        Secret secret =
                client.secrets().inNamespace(namespace).withName(secretName).get();
        if (secret == null) {
            secret = createOrRead(client, namespace, secretName, names);
        }
        Map<String, String> data = secret.getData() == null ? Map.of() : secret.getData();
        for (String key : List.of(CERT, KEY, CA)) {
            if (data.get(key) == null) {
                throw new IOException("the Secret " + namespace + "/" + secretName + " has no " + key
                        + ": delete it to have one generated, or give it tls.crt, tls.key and ca.crt");
            }
        }
        String ca = decode(data.get(CA));
        publishCa(client, namespace, caConfigMap, ca);
        return new Pems(decode(data.get(CERT)), decode(data.get(KEY)), ca);
    }

    private static Secret createOrRead(KubernetesClient client, String namespace, String name, List<String> names)
            throws GeneralSecurityException, IOException {
        Secret generated = new SecretBuilder()
                .withNewMetadata()
                .withName(name)
                .withNamespace(namespace)
                .endMetadata()
                .withType("kubernetes.io/tls")
                .withData(generate(names))
                .build();
        try {
            Secret created = client.resource(generated).create();
            LOG.info(
                    "generated the pull-credentials serving certificate for {} in Secret {}/{}",
                    names,
                    namespace,
                    name);
            return created;
        } catch (KubernetesClientException e) {
            if (e.getCode() != HttpURLConnection.HTTP_CONFLICT) {
                throw e;
            }
            // Another replica created it first: both serve its certificate.
            return client.secrets().inNamespace(namespace).withName(name).require();
        }
    }

    private static void publishCa(KubernetesClient client, String namespace, String name, String caPem) {
        ConfigMap wanted = new ConfigMapBuilder()
                .withNewMetadata()
                .withName(name)
                .withNamespace(namespace)
                .endMetadata()
                .withData(Map.of(CA, caPem))
                .build();
        ConfigMap current =
                client.configMaps().inNamespace(namespace).withName(name).get();
        if (current == null) {
            try {
                client.resource(wanted).create();
            } catch (KubernetesClientException e) {
                if (e.getCode() != HttpURLConnection.HTTP_CONFLICT) {
                    throw e;
                }
            }
        } else if (current.getData() == null
                || !Objects.equals(current.getData().get(CA), caPem)) {
            current.setData(Map.of(CA, caPem));
            client.resource(current).update();
        }
    }

    /** A CA and a serving certificate it signed, ECDSA P-256, as base64-encoded PEM by key. */
    private static Map<String, String> generate(List<String> names) throws GeneralSecurityException, IOException {
        try {
            KeyPair ca = newKeyPair();
            X500Name caName = new X500Name("CN=stevedore-pull-credentials-ca");
            X509CertificateHolder caCert = sign(caName, ca, caName, ca, builder -> {
                builder.addExtension(Extension.basicConstraints, true, new BasicConstraints(true));
                builder.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign));
            });
            KeyPair server = newKeyPair();
            List<GeneralName> sans = new ArrayList<>();
            for (String name : names) {
                boolean ip = name.matches("[0-9.]+") || name.contains(":");
                sans.add(new GeneralName(ip ? GeneralName.iPAddress : GeneralName.dNSName, name));
            }
            X509CertificateHolder serverCert = sign(caName, ca, new X500Name("CN=" + names.get(0)), server, builder -> {
                builder.addExtension(
                        Extension.subjectAlternativeName, false, new GeneralNames(sans.toArray(GeneralName[]::new)));
                builder.addExtension(
                        Extension.extendedKeyUsage, false, new ExtendedKeyUsage(KeyPurposeId.id_kp_serverAuth));
                builder.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.digitalSignature));
            });
            return Map.of(
                    CERT, encode(pem(serverCert)),
                    KEY, encode(pem(new JcaPKCS8Generator(server.getPrivate(), null))),
                    CA, encode(pem(caCert)));
        } catch (OperatorCreationException e) {
            throw new GeneralSecurityException(e);
        }
    }

    private interface Extensions {
        void add(JcaX509v3CertificateBuilder builder) throws CertIOException;
    }

    private static X509CertificateHolder sign(
            X500Name issuer, KeyPair issuerKey, X500Name subject, KeyPair subjectKey, Extensions extensions)
            throws CertIOException, OperatorCreationException {
        Instant now = Instant.now();
        JcaX509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(
                issuer,
                new BigInteger(64, RANDOM),
                Date.from(now.minus(Duration.ofHours(1))), // clocks of other hosts lag
                Date.from(now.plus(VALIDITY)),
                subject,
                subjectKey.getPublic());
        extensions.add(builder);
        return builder.build(new JcaContentSignerBuilder("SHA256withECDSA").build(issuerKey.getPrivate()));
    }

    private static SSLContext sslContext(String certPem, String keyPem) throws GeneralSecurityException, IOException {
        List<Certificate> chain = new ArrayList<>(CertificateFactory.getInstance("X.509")
                .generateCertificates(new ByteArrayInputStream(certPem.getBytes(StandardCharsets.US_ASCII))));
        if (chain.isEmpty()) {
            throw new IOException("tls.crt holds no certificate");
        }
        PrivateKey key = privateKey(keyPem, chain.get(0).getPublicKey().getAlgorithm());
        KeyStore store = KeyStore.getInstance("PKCS12");
        store.load(null, null);
        char[] password = new char[0];
        store.setKeyEntry("serving", key, password, chain.toArray(Certificate[]::new));
        KeyManagerFactory keys = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        keys.init(store, password);
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(keys.getKeyManagers(), null, RANDOM);
        return context;
    }

    /** A PKCS#8 key ("PRIVATE KEY"), as this class and cert-manager (with encoding PKCS8) write it. */
    private static PrivateKey privateKey(String pem, String algorithm) throws GeneralSecurityException, IOException {
        if (!pem.contains("-----BEGIN PRIVATE KEY-----")) {
            throw new IOException("tls.key is not a PKCS#8 PEM key (BEGIN PRIVATE KEY)");
        }
        String base64 = pem.replaceAll("-----(BEGIN|END) PRIVATE KEY-----", "").replaceAll("\\s", "");
        return KeyFactory.getInstance(algorithm)
                .generatePrivate(new PKCS8EncodedKeySpec(Base64.getDecoder().decode(base64)));
    }

    private static KeyPair newKeyPair() throws GeneralSecurityException {
        KeyPairGenerator generator = KeyPairGenerator.getInstance("EC");
        generator.initialize(new ECGenParameterSpec("secp256r1"), RANDOM);
        return generator.generateKeyPair();
    }

    private static String pem(Object object) throws IOException {
        StringWriter text = new StringWriter();
        try (JcaPEMWriter writer = new JcaPEMWriter(text)) {
            writer.writeObject(object);
        }
        return text.toString();
    }

    private static String encode(String text) {
        return Base64.getEncoder().encodeToString(text.getBytes(StandardCharsets.US_ASCII));
    }

    private static String decode(String base64) {
        return new String(Base64.getDecoder().decode(base64), StandardCharsets.US_ASCII);
    }
}
