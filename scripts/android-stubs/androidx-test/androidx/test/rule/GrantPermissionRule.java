package androidx.test.rule;

public class GrantPermissionRule implements org.junit.rules.TestRule {
    private GrantPermissionRule() {}
    public static GrantPermissionRule grant(String... permissions) { throw new RuntimeException("Stub!"); }
    @Override
    public org.junit.runners.model.Statement apply(org.junit.runners.model.Statement base, org.junit.runner.Description description) {
        throw new RuntimeException("Stub!");
    }
}
