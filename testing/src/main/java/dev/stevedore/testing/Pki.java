package dev.stevedore.testing;

import java.io.IOException;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.math.BigInteger;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.Date;
import java.util.List;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x500.X500NameBuilder;
import org.bouncycastle.asn1.x500.style.BCStyle;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.openssl.jcajce.JcaPKCS8Generator;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * The certificates and keys of a local control plane: one CA, the API server's serving certificate, client
 * certificates for the admin and kube-controller-manager, the service-account token signing key, and, as kubeadm
 * makes them, a front-proxy CA of its own with the client certificate the API server proxies aggregated APIs with. Keys are
 * ECDSA P-256, fast to generate, except the admin's: RSA, the only kind fabric8 reads from a kubeconfig without
 * being told the algorithm. Files are PEM; an existing
 * directory is reused, so a restarted control plane keeps trusting the kubeconfigs it handed out.
 */
final class Pki {
    static final String ADMIN = "admin";
    static final String CONTROLLER_MANAGER = "kube-controller-manager";
    /** The front-proxy client's file name and common name (--requestheader-allowed-names). */
    static final String FRONT_PROXY_CLIENT = "front-proxy-client";

    private static final Duration VALIDITY = Duration.ofDays(365);
    private static final SecureRandom RANDOM = new SecureRandom();

    private final Path dir;

    private Pki(Path dir) {
        this.dir = dir;
    }

    static Pki createOrReuse(Path dir) {
        Pki pki = new Pki(dir);
        try {
            if (!Files.exists(pki.saPublicKey())) {
                pki.generate();
            }
            // Also for a directory made before the aggregation layer was set up.
            if (!Files.exists(pki.frontProxyCaCert())) {
                pki.generateFrontProxy();
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (GeneralSecurityException | OperatorCreationException e) {
            throw new IllegalStateException("cannot generate the control plane's certificates", e);
        }
        return pki;
    }

    Path frontProxyCaCert() {
        return dir.resolve("front-proxy-ca.crt");
    }

    Path caCert() {
        return dir.resolve("ca.crt");
    }

    Path caKey() {
        return dir.resolve("ca.key");
    }

    Path serverCert() {
        return dir.resolve("apiserver.crt");
    }

    Path serverKey() {
        return dir.resolve("apiserver.key");
    }

    Path clientCert(String name) {
        return dir.resolve(name + ".crt");
    }

    Path clientKey(String name) {
        return dir.resolve(name + ".key");
    }

    Path saPrivateKey() {
        return dir.resolve("sa.key");
    }

    Path saPublicKey() {
        return dir.resolve("sa.pub");
    }

    private void generate() throws IOException, GeneralSecurityException, OperatorCreationException {
        Files.createDirectories(dir);
        KeyPair ca = newKeyPair();
        X500Name caName = name("stevedore-local-ca", null);
        X509CertificateHolder caCert = sign(caName, ca, caName, ca.getPublic(), builder -> {
            builder.addExtension(Extension.basicConstraints, true, new BasicConstraints(true));
            builder.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
        });
        write(caCert(), caCert);
        write(caKey(), ca.getPrivate());

        KeyPair server = newKeyPair();
        GeneralNames sans = new GeneralNames(List.of(
                        new GeneralName(GeneralName.dNSName, "localhost"),
                        new GeneralName(GeneralName.dNSName, "kubernetes"),
                        new GeneralName(GeneralName.dNSName, "kubernetes.default"),
                        new GeneralName(GeneralName.dNSName, "kubernetes.default.svc"),
                        new GeneralName(GeneralName.dNSName, "kubernetes.default.svc.cluster.local"),
                        new GeneralName(GeneralName.iPAddress, "127.0.0.1"),
                        new GeneralName(GeneralName.iPAddress, ControlPlane.SERVICE_IP))
                .toArray(GeneralName[]::new));
        write(serverCert(), sign(caName, ca, name("kube-apiserver", null), server.getPublic(), builder -> {
            builder.addExtension(Extension.subjectAlternativeName, false, sans);
            builder.addExtension(
                    Extension.extendedKeyUsage, false, new ExtendedKeyUsage(KeyPurposeId.id_kp_serverAuth));
        }));
        write(serverKey(), server.getPrivate());

        client(ADMIN, name("stevedore-admin", "system:masters"), caName, ca, newRsaKeyPair());
        client(CONTROLLER_MANAGER, name("system:kube-controller-manager", null), caName, ca, newKeyPair());

        KeyPair sa = newKeyPair();
        write(saPrivateKey(), sa.getPrivate());
        // Written last: its presence marks a complete directory.
        write(saPublicKey(), sa.getPublic());
    }

    private void generateFrontProxy() throws IOException, GeneralSecurityException, OperatorCreationException {
        KeyPair ca = newKeyPair();
        X500Name caName = name("stevedore-local-front-proxy-ca", null);
        X509CertificateHolder caCert = sign(caName, ca, caName, ca.getPublic(), builder -> {
            builder.addExtension(Extension.basicConstraints, true, new BasicConstraints(true));
            builder.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
        });
        client(FRONT_PROXY_CLIENT, name(FRONT_PROXY_CLIENT, null), caName, ca, newKeyPair());
        // Written last: its presence marks the front proxy's files complete.
        write(frontProxyCaCert(), caCert);
    }

    private void client(String file, X500Name subject, X500Name caName, KeyPair ca, KeyPair key)
            throws IOException, OperatorCreationException {
        write(
                clientCert(file),
                sign(
                        caName,
                        ca,
                        subject,
                        key.getPublic(),
                        builder -> builder.addExtension(
                                Extension.extendedKeyUsage,
                                false,
                                new ExtendedKeyUsage(KeyPurposeId.id_kp_clientAuth))));
        write(clientKey(file), key.getPrivate());
    }

    private interface Extensions {
        void add(X509v3CertificateBuilder builder) throws IOException;
    }

    private static X509CertificateHolder sign(
            X500Name issuer,
            KeyPair issuerKey,
            X500Name subject,
            java.security.PublicKey subjectKey,
            Extensions extensions)
            throws IOException, OperatorCreationException {
        Instant now = Instant.now();
        X509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(
                issuer,
                new BigInteger(64, RANDOM).abs(),
                Date.from(now.minus(Duration.ofHours(1))),
                Date.from(now.plus(VALIDITY)),
                subject,
                subjectKey);
        extensions.add(builder);
        return builder.build(new JcaContentSignerBuilder("SHA256withECDSA").build(issuerKey.getPrivate()));
    }

    private static X500Name name(String commonName, String organization) {
        X500NameBuilder builder = new X500NameBuilder(BCStyle.INSTANCE);
        if (organization != null) {
            builder.addRDN(BCStyle.O, organization);
        }
        return builder.addRDN(BCStyle.CN, commonName).build();
    }

    private static KeyPair newKeyPair() throws GeneralSecurityException {
        KeyPairGenerator generator = KeyPairGenerator.getInstance("EC");
        generator.initialize(new ECGenParameterSpec("secp256r1"), RANDOM);
        return generator.generateKeyPair();
    }

    private static KeyPair newRsaKeyPair() throws GeneralSecurityException {
        KeyPairGenerator generator = KeyPairGenerator.getInstance("RSA");
        generator.initialize(2048, RANDOM);
        return generator.generateKeyPair();
    }

    private static void write(Path file, Object pemObject) throws IOException {
        StringWriter text = new StringWriter();
        try (JcaPEMWriter writer = new JcaPEMWriter(text)) {
            // Private keys as PKCS#8 ("PRIVATE KEY"), the form every Go and Java reader takes.
            writer.writeObject(pemObject instanceof PrivateKey key ? new JcaPKCS8Generator(key, null) : pemObject);
        }
        Files.writeString(file, text.toString());
        if (pemObject instanceof PrivateKey) {
            Files.setPosixFilePermissions(file, java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
        }
    }
}
